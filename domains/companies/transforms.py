"""Companies domain: the company master (identifiers, geography, sector, money in EUR).

Pure functions: DataFrames in (as ``pd.read_csv(path)`` returns them), :class:`mesh_assets.cleaning.Cleaned`
out. No I/O, no Dagster. Output dtypes: text ``string`` (missing = <NA>), money/ratios ``float64``,
counts ``float64`` (share counts can exceed int64-safe float precision rules only in theory; they are kept
as reported), dates ``datetime64[us]`` (midnight, no time zone), flags ``bool``/``boolean``.
Rules are documented in ``docs/cleaning-rules.md``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mesh_assets.ingest.cleaning import Cleaned, clean_text, typed_frame
from mesh_assets.ingest.identifiers import (
    ISIN_SHAPE,
    clean_lei,
    country_lookup,
    is_valid_isin,
    normalise_country,
    split_company_id,
)
from mesh_assets.ingest.units import UnknownUnitError, conversion_factor, unit_info

# Regions ITR uses for companies (the benchmark files use Global / Europe / North America / OECD / non-OECD).
ITR_REGIONS = ("North America", "Europe", "Asia", "Global", "OECD", "non-OECD")

MONEY_COLUMNS: dict[str, str] = {
    "market_cap": "market_cap_eur",
    "revenue": "revenue_eur",
    "ev": "ev_eur",
    "evic": "evic_eur",
    "assets": "assets_eur",
    "debt": "debt_eur",
    "cash": "cash_eur",
    "share price on report date": "share_price_eur",
}
# A value <= 0 in these columns is not a usable figure: it is set to missing and flagged.
POSITIVE_MONEY = ("market_cap", "revenue", "evic", "assets")
# Company-size figures below this (in EUR) are placeholders, not sizes: PETRONAS_SOE carries a
# market cap, EV and EVIC of 1 USD. Left in, such a value takes the whole EVIC-weighted
# (ECOTS) portfolio score, so it is set to missing and flagged ``<column>_placeholder``.
SIZE_MONEY = ("market_cap", "ev", "evic")
PLACEHOLDER_BELOW_EUR = 1_000_000.0

COMPANY_MASTER_COLUMNS: dict[str, str] = {
    "company_id": "string",
    "base_company_id": "string",
    "segment": "string",
    "company_name": "string",
    "isin": "string",
    "lei": "string",
    "country_reported": "string",
    "country_iso2": "string",
    "region": "string",
    "region_source": "string",
    "is_oecd": "boolean",
    "sector": "string",
    "exposure": "string",
    "currency": "string",
    "currency_reported": "string",
    "money_unit_scale": "float64",
    "fx_rate_to_eur": "float64",
    "report_date": "datetime64[us]",
    "market_cap_eur": "float64",
    "revenue_eur": "float64",
    "ev_eur": "float64",
    "evic_eur": "float64",
    "assets_eur": "float64",
    "debt_eur": "float64",
    "cash_eur": "float64",
    "share_price_eur": "float64",
    "shares_outstanding": "float64",
    "quality_flags": "string",
}


# --------------------------------------------------------------------------------------------------
# company_master
# --------------------------------------------------------------------------------------------------
def _money_factor(currency: Any, fx_quote: Any, fx_rate: Any) -> tuple[str | None, float, float, list[str]]:
    """(ISO currency, unit scale, factor reported-money -> EUR, flags). factor is NaN when unknown."""
    flags: list[str] = []
    cur = clean_text(currency)
    if cur is None:
        return None, math.nan, math.nan, ["currency_missing"]
    try:
        kind, iso = unit_info(cur)
        scale = conversion_factor(cur, iso)
        if kind != "currency":
            raise UnknownUnitError(cur, "not a currency")
    except UnknownUnitError:
        return None, math.nan, math.nan, ["currency_unknown"]
    quote = clean_text(fx_quote)
    rate = float(fx_rate) if fx_rate is not None and not pd.isna(fx_rate) else math.nan
    quote_scale = 1.0
    if quote is not None:
        try:
            q_kind, q_iso = unit_info(quote)
            quote_scale = conversion_factor(quote, q_iso)
        except UnknownUnitError:
            q_kind, q_iso = "", ""
        if q_kind != "currency" or q_iso != "EUR":
            return iso, scale, math.nan, ["fx_quote_not_eur"]
    if iso == "EUR":
        factor = scale
        if not math.isnan(rate) and not math.isclose(rate * quote_scale, scale, rel_tol=1e-9):
            flags.append("fx_rate_inconsistent_for_eur")
        elif math.isnan(rate):
            flags.append("fx_rate_missing_eur_implied")
        return iso, scale, factor, flags
    if math.isnan(rate) or rate <= 0:
        return iso, scale, math.nan, ["fx_rate_missing"]
    return iso, scale, rate * quote_scale, flags


def company_master(fundamentals: pd.DataFrame, country_regions: pd.DataFrame) -> Cleaned:
    """One row per ``company_id`` from ``fundamentals.csv``.

    ``country_regions`` is the output of :func:`domains.benchmarks.transforms.country_regions`.

    Output columns: ``company_id`` (as reported, trimmed), ``base_company_id``/``segment`` (``IT0003132476-Oil``
    -> ``IT0003132476``/``Oil``; otherwise id/<NA>), ``company_name``, ``isin`` (= company_id only when it is
    a valid ISIN incl. check digit), ``lei`` (valid ISO 17442 only; ``0`` placeholders and bad checksums ->
    <NA>, flagged), ``country_reported``, ``country_iso2`` (codes and names normalised: ``Germany`` -> ``DE``,
    ``Great Britain``/``UK`` -> ``GB``), ``region`` (reported when it is a region name, else ITR's region of
    the country, else ``Global``) with ``region_source`` (``reported``/``derived_from_country``/
    ``default_global``), ``is_oecd``, ``sector``, ``exposure``, ``currency`` (ISO code: ``megaEUR`` -> ``EUR``),
    ``currency_reported``, ``money_unit_scale`` (1e6 for megaEUR), ``fx_rate_to_eur`` (EUR per 1 unit of
    ``currency``), ``report_date``, money in EUR: ``market_cap_eur``, ``revenue_eur``, ``ev_eur``,
    ``evic_eur``, ``assets_eur``, ``debt_eur``, ``cash_eur``, ``share_price_eur``; ``shares_outstanding``;
    ``quality_flags`` (``|``-separated: every value that was altered or nulled, e.g. ``lei_placeholder``,
    ``region_derived``, ``fx_rate_missing_eur_implied``, ``evic_nonpositive``).

    Money: EUR = value x ``fx_rate`` (which converts ``currency`` into ``fx_quote`` = EUR, so Eni's
    ``megaEUR`` rows carry fx_rate 1e6). Missing fx_rate: implied for EUR-denominated currencies (scale x 1),
    otherwise money stays <NA> (flag ``fx_rate_missing``).

    Rejected: rows without company_id; repeated company_id (the row with the latest report_date is kept).
    """
    cleaned = Cleaned(data=pd.DataFrame())
    # local import keeps the domains decoupled at import time

    df = fundamentals.copy()
    df["company_id"] = df["company_id"].map(clean_text)
    missing_id = df["company_id"].isna()
    cleaned.reject("missing company_id", int(missing_id.sum()))
    df = df[~missing_id].copy()
    df["_report_date"] = pd.to_datetime(df["report_date"], errors="coerce")
    df["_order"] = range(len(df))
    df = df.sort_values(
        ["company_id", "_report_date", "_order"], ascending=[True, False, True], na_position="last"
    )
    dup = df["company_id"].duplicated()
    cleaned.reject("duplicate company_id (latest report_date kept)", int(dup.sum()))
    df = df[~dup].sort_values("_order")

    lookup = country_lookup(country_regions)
    by_iso2 = country_regions.dropna(subset=["iso2"]).drop_duplicates("iso2").set_index("iso2")
    valid_regions = set(ITR_REGIONS)
    for col in ("region_ar6_6", "region_ar6_10"):
        valid_regions |= set(country_regions[col].dropna().astype(str))

    rows: list[dict[str, Any]] = []
    for rec in df.to_dict("records"):
        flags: list[str] = []
        cid = rec["company_id"]
        base, segment = split_company_id(cid)
        if "+" in cid:
            flags.append("sector_split_id")
        isin = cid if is_valid_isin(cid) else None
        if isin is None and ISIN_SHAPE.match(cid or ""):
            flags.append("isin_check_digit_invalid")
        lei, lei_flag = clean_lei(rec.get("company_lei"))
        if lei_flag:
            flags.append(lei_flag)
        elif lei is None:
            flags.append("lei_missing")

        country_reported = clean_text(rec.get("country"))
        iso2 = normalise_country(country_reported, lookup)
        if country_reported is None:
            flags.append("country_missing")
        elif iso2 is None:
            flags.append("country_unknown")
        country_row = by_iso2.loc[iso2] if iso2 is not None and iso2 in by_iso2.index else None

        region = clean_text(rec.get("region"))
        if region is not None and region in valid_regions:
            region_source = "reported"
        else:
            if region is not None:
                flags.append("region_invalid_replaced")
            if country_row is not None:
                region, region_source = str(country_row["itr_region"]), "derived_from_country"
                flags.append("region_derived")
            else:
                region, region_source = "Global", "default_global"
                flags.append("region_default_global")

        iso_cur, scale, factor, money_flags = _money_factor(
            rec.get("currency"), rec.get("fx_quote"), rec.get("fx_rate")
        )
        flags += money_flags
        money: dict[str, float] = {}
        for src, dst in MONEY_COLUMNS.items():
            raw = rec.get(src)
            value = float(raw) if raw is not None and not pd.isna(raw) else math.nan
            if src in POSITIVE_MONEY and not math.isnan(value) and value <= 0:
                flags.append(f"{src}_nonpositive")
                value = math.nan
            if src in SIZE_MONEY and not math.isnan(value) and 0 < value * factor < PLACEHOLDER_BELOW_EUR:
                flags.append(f"{src}_placeholder")
                value = math.nan
            money[dst] = value * factor
        report_date = rec["_report_date"]
        if pd.isna(report_date) and clean_text(rec.get("report_date")) is not None:
            flags.append("report_date_invalid")
        shares = rec.get("shares outstanding")
        rows.append(
            {
                "company_id": cid,
                "base_company_id": base,
                "segment": segment,
                "company_name": clean_text(rec.get("company_name")),
                "isin": isin,
                "lei": lei,
                "country_reported": country_reported,
                "country_iso2": iso2,
                "region": region,
                "region_source": region_source,
                "is_oecd": bool(country_row["is_oecd"]) if country_row is not None else None,
                "sector": clean_text(rec.get("sector")),
                "exposure": clean_text(rec.get("exposure")),
                "currency": iso_cur,
                "currency_reported": clean_text(rec.get("currency")),
                "money_unit_scale": scale,
                "fx_rate_to_eur": factor / scale if scale and not math.isnan(scale) else math.nan,
                "report_date": report_date,
                **money,
                "shares_outstanding": float(shares)
                if shares is not None and not pd.isna(shares)
                else math.nan,
                "quality_flags": "|".join(flags) or None,
            }
        )
    cleaned.data = typed_frame(rows, COMPANY_MASTER_COLUMNS)
    return cleaned
