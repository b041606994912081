"""Company and country identifiers: the rules every domain that joins on a company applies the same way.

Domains share products, never code (decision 0002): what several domains need to read an
identifier (ISIN and LEI check digits, the ``ISIN-segment`` form of ITR's company ids, a country
name or code to ISO-2 through the ``benchmarks/country_regions`` product) lives here, in the
platform, so a change in one domain never breaks another's code location.

pandas is imported only by the country functions' callers' frames; this module imports nothing
heavy, so asset modules may import it at load.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mesh_assets.ingest.cleaning import clean_text

if TYPE_CHECKING:
    import pandas as pd

# an ISIN's shape (country, 9 alphanumerics, a digit); is_valid_isin also checks the check digit
ISIN_SHAPE = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_LEI_RE = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
# ISIN followed by a segment suffix, e.g. IT0003132476-Oil, US05351W1036-E
_SEGMENT_ID_RE = re.compile(r"^([A-Z]{2}[A-Z0-9]{9}[0-9])-(.+)$")
# Text used in place of a missing LEI (besides "0"), compared case-insensitively.
LEI_PLACEHOLDERS = {"not available", "n/a", "na", "none", "null", "-", "unknown"}


def _alnum_to_digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def is_valid_isin(value: Any) -> bool:
    """ISO 6166: 2-letter country, 9 alphanumerics, Luhn check digit over the letter-expanded string."""
    text = clean_text(value)
    if text is None or not ISIN_SHAPE.match(text):
        return False
    digits = _alnum_to_digits(text)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_lei(value: Any) -> bool:
    """ISO 17442: 18 alphanumerics + 2 check digits; the letter-expanded number mod 97 equals 1 (ISO 7064)."""
    text = clean_text(value)
    if text is None or not _LEI_RE.match(text):
        return False
    return int(_alnum_to_digits(text)) % 97 == 1


def clean_lei(value: Any) -> tuple[str | None, str | None]:
    """(LEI or None, flag or None).

    ``0`` and texts such as ``Not Available`` are placeholders (flag ``lei_placeholder``); a malformed or
    bad-checksum LEI is dropped (flag ``lei_invalid``); missing -> (None, None).
    """
    text = clean_text(value)
    if text is None:
        return None, None
    if text.strip("0") == "" or text.casefold() in LEI_PLACEHOLDERS:
        return None, "lei_placeholder"
    text = text.upper()
    if not is_valid_lei(text):
        return None, "lei_invalid"
    return text, None


def split_company_id(company_id: Any) -> tuple[str | None, str | None]:
    """``ISIN-Segment`` -> (ISIN, segment); ``ISIN+Sector`` -> (ISIN, sector); others -> (id, None)."""
    text = clean_text(company_id)
    if text is None:
        return None, None
    if "+" in text:
        base, _, sector = text.partition("+")
        return base.strip(), clean_text(sector)
    m = _SEGMENT_ID_RE.match(text)
    if m:
        return m.group(1), m.group(2)
    return text, None


def _key(value: str) -> str:
    return " ".join(value.casefold().replace(".", ". ").split()).replace(" .", ".")


def _is_missing(value: Any) -> bool:
    return value is None or value != value or str(value) == "<NA>"


def country_lookup(country_regions_df: pd.DataFrame) -> dict[str, str]:
    """casefolded name/code -> ISO-2, built from a ``benchmarks/country_regions`` product (current countries first)."""
    lookup: dict[str, str] = {}
    df = country_regions_df.sort_values("iso_status")  # "current" before "withdrawn"
    for rec in df.to_dict("records"):
        iso2 = rec.get("iso2")
        if iso2 is None or _is_missing(iso2):
            continue
        keys = [
            iso2,
            rec.get("iso3"),
            rec.get("country_name"),
            rec.get("official_name"),
            rec.get("common_name"),
        ]
        aliases = rec.get("aliases")
        if isinstance(aliases, str):
            keys += aliases.split("|")
        for k in keys:
            if isinstance(k, str) and k.strip():
                lookup.setdefault(_key(k), str(iso2))
    return lookup


def normalise_country(value: Any, country_regions_df: pd.DataFrame | dict[str, str]) -> str | None:
    """ISO-2 code for a country code or name, or None.

    Accepts ISO-2 (``DE``), ISO-3 (``DEU``), ISO names (``Germany``), official/common/World Bank names
    (``South Korea``, ``Czech Republic``), aliases (``UK``, ``Great Britain``) and ``Name (CODE)``
    forms (``United Kingdom (UK)``); case and whitespace are ignored. ``country_regions_df`` is the
    ``benchmarks/country_regions`` product or a prebuilt :func:`country_lookup` dict.
    """
    text = clean_text(value)
    if text is None:
        return None
    lookup = (
        country_regions_df if isinstance(country_regions_df, dict) else country_lookup(country_regions_df)
    )
    candidates = [text]
    m = re.match(r"^(.*?)\s*\((.*)\)\s*$", text)
    if m:
        candidates += [m.group(1), m.group(2)]
    for cand in candidates:
        hit = lookup.get(_key(cand))
        if hit:
            return hit
    return None
