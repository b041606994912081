"""The shape every domain cleaning step returns: usable rows, plus a count of what was set aside and why.

Data is never dropped silently in the mesh: a cleaning function returns the rows it kept and a
reason -> row-count tally of the rows it could not use. The platform records that tally in the
asset's Dagster metadata, so a consumer sees exactly what was excluded.

pandas is imported inside the functions, not at module level: this module is imported when a
code location loads, and pandas would add about a second to every load (see ``bench/load_bench.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
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


def clean_text(value: Any) -> str | None:
    """Text with whitespace collapsed (``"s1+s2 "`` -> ``"s1+s2"``); None for missing or blank."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def typed_frame(rows: pd.DataFrame | list[dict[str, Any]], schema: dict[str, str]) -> pd.DataFrame:
    """Rows as a DataFrame with exactly ``schema``'s columns, in order, with its dtypes.

    Products publish stable dtypes (string, Int64, float64, ...) whatever the input inferred, so
    an empty or all-null column still has the type its contract declares.
    """
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(schema))
    return frame.reindex(columns=list(schema)).astype(schema).reset_index(drop=True)


def cleaned_output(cleaned: Cleaned, **metadata: dg.RawMetadataValue) -> dg.Output[pd.DataFrame]:
    """The asset output for a cleaning step, with what it set aside recorded as metadata.

    ``mesh/rejected_rows`` is the total and ``mesh/rejections`` a reason -> rows table, so a
    consumer (or a freshness/quality check) sees what was excluded and why.
    """
    reasons = sorted(cleaned.rejected.items(), key=lambda item: (-item[1], item[0]))
    table = "\n".join(["| reason | rows |", "| --- | ---: |", *(f"| {r} | {n} |" for r, n in reasons)])
    return dg.Output(
        cleaned.data,
        metadata={
            "mesh/rejected_rows": dg.MetadataValue.int(cleaned.rejected_rows),
            "mesh/rejections": dg.MetadataValue.md(table if reasons else "no rows rejected"),
            "mesh/rejections_by_reason": dg.MetadataValue.json(dict(reasons)),
            **metadata,
        },
    )
