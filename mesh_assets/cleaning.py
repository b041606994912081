"""The shape every domain cleaning step returns: usable rows, plus a count of what was set aside and why.

Data is never dropped silently in the mesh: a cleaning function returns the rows it kept and a
reason -> row-count tally of the rows it could not use. The platform records that tally in the
asset's Dagster metadata, so a consumer sees exactly what was excluded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Cleaned:
    """Rows a cleaning step kept, and the rows it set aside counted by reason."""

    data: pd.DataFrame
    rejected: Counter[str] = field(default_factory=Counter)

    def reject(self, reason: str, rows: int) -> None:
        """Count ``rows`` rows set aside for ``reason`` (zero counts are not recorded)."""
        if rows:
            self.rejected[reason] += int(rows)

    @property
    def rejected_rows(self) -> int:
        return sum(self.rejected.values())
