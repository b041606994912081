"""Raw inputs: the files a domain ingests, read with errors that say what to fix.

The raw-input location is a setting (``MESH_RAW_DIR``), so the same pipeline runs on another
drop of files of the same shape. Reading goes through this resource so that every domain gets the
same behaviour on bad files: a missing file, an empty file, bytes that are not UTF-8 or a missing
column stop the asset with one clear message naming the file, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd


class RawInputError(ValueError):
    """A raw input file is missing or unreadable; the message names the file and the problem."""


class RawInputs(dg.ConfigurableResource):
    """Reads the raw files of the mesh from ``root`` (the ``MESH_RAW_DIR`` setting)."""

    root: str

    def path(self, relative: str) -> Path:
        path = Path(self.root) / relative
        if not path.is_file():
            raise RawInputError(f"raw input {relative!r} not found under {self.root} (MESH_RAW_DIR)")
        return path

    def read_csv(
        self,
        relative: str,
        *,
        required_columns: Iterable[str] = (),
        numeric_columns: Iterable[str] = (),
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Read a CSV drop, refusing it unless it has rows, the required columns and numbers where numbers belong.

        A value that is present but not a number in a ``numeric_columns`` column is refused with the
        column, the count and the first CSV line, rather than silently becoming a missing value.
        """
        import pandas as pd  # at run time only: the resource is built when a code location loads

        path = self.path(relative)
        raw = path.read_bytes()
        if not raw.strip():
            raise RawInputError(f"raw input {relative!r} is empty")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RawInputError(
                f"raw input {relative!r} is not valid UTF-8: byte {raw[exc.start]:#04x} at offset {exc.start} "
                f"(line {line}); re-export the file as UTF-8"
            ) from None
        try:
            frame = pd.read_csv(path, **kwargs)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise RawInputError(f"raw input {relative!r} cannot be parsed as CSV: {exc}") from None
        missing = [c for c in [*required_columns, *numeric_columns] if c not in frame.columns]
        if missing:
            raise RawInputError(
                f"raw input {relative!r} lacks required column(s) {missing}; it has {list(frame.columns)}"
            )
        if frame.empty:
            raise RawInputError(f"raw input {relative!r} has a header but no rows")
        for column in numeric_columns:
            values = frame[column]
            parsed = pd.Series(pd.to_numeric(values, errors="coerce"), index=values.index)
            bad = values.notna() & parsed.isna()
            if bad.any():
                first = int(bad.to_numpy().nonzero()[0][0])
                raise RawInputError(
                    f"raw input {relative!r}: column {column!r} has {int(bad.sum())} value(s) that are not numbers, "
                    f"e.g. {values[bad].iloc[0]!r} on line {first + 2}"
                )
            frame[column] = parsed
        return frame

    def read_json(self, relative: str) -> Any:
        path = self.path(relative)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise RawInputError(f"raw input {relative!r} is not valid UTF-8 (offset {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise RawInputError(f"raw input {relative!r} is not valid JSON: {exc}") from None

    def provenance(self, *relatives: str) -> dict[str, dg.MetadataValue]:
        """Metadata naming the files read and their SHA-256, so a materialization is traceable to its inputs."""
        return {
            f"source/{Path(r).name}": dg.MetadataValue.text(
                f"{r} sha256:{hashlib.sha256(self.path(r).read_bytes()).hexdigest()[:16]}"
            )
            for r in relatives
        }
