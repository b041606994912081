"""Benchmarks domain: country/region reference data and ITR sector benchmark pathways.

Pure functions: DataFrames (as ``pd.read_csv(path)`` returns them) or parsed JSON dicts in,
:class:`mesh_assets.cleaning.Cleaned` out. No I/O, no Dagster.

Dtypes of every output: text columns ``string`` (pd.StringDtype, missing = <NA>), integers ``Int64``,
measures ``float64``, flags ``bool`` (or ``boolean`` when they can be unknown). See
``docs/cleaning-rules.md`` for the rules.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from domains.benchmarks.scenarios import BENCHMARK_FILES as BENCHMARK_FILES  # stable ids -> file names
from mesh_assets.ingest.cleaning import Cleaned, clean_text, typed_frame
from mesh_assets.ingest.units import UnknownUnitError, canonical_unit, conversion_factor, parse_quantity

PRODUCTION_BENCHMARK_FILE = "benchmark_production_OECM.json"

# Benchmark sector spellings -> the sector names used by company data (OECM naming).
SECTOR_ALIASES: dict[str, str] = {"Aluminium": "Aluminum"}

# Extra names/codes seen in company data that are not in the ISO tables (plus legacy 2-letter codes ITR maps).
COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "GB": ("UK", "Great Britain", "Britain", "United Kingdom (UK)", "England", "Scotland", "Wales"),
    "US": ("USA", "U.S.", "U.S.A.", "United States of America", "America"),
    "KR": ("Korea", "Republic of Korea", "Korea (South)"),
    "KP": ("Korea (North)",),
    "RU": ("Russia",),
    "NL": ("Holland", "The Netherlands"),
    "CN": ("PRC", "People's Republic of China", "Mainland China"),
    "CZ": ("Czech Republic",),
    "TR": ("Turkey",),
    "ES": ("SP",),
    "LU": ("LX",),
    "JP": ("JN",),
    "PT": ("PO",),
    "AE": ("UAE",),
}
# ISO 3166 codes of countries that no longer exist but appear in region_classification.csv.
WITHDRAWN_ISO2: dict[str, str] = {"ANT": "AN", "SCG": "CS"}

COUNTRY_REGION_COLUMNS: dict[str, str] = {
    "iso2": "string",
    "iso3": "string",
    "iso_numeric": "Int64",
    "country_name": "string",
    "official_name": "string",
    "common_name": "string",
    "aliases": "string",
    "region_ar6_6": "string",
    "region_ar6_10": "string",
    "region_ar6_22": "string",
    "region_ar6_dev": "string",
    "is_oecd": "bool",
    "itr_region": "string",
    "iso_status": "string",
}

INTENSITY_PATHWAY_COLUMNS: dict[str, str] = {
    "benchmark_id": "string",
    "scenario_name": "string",
    "release_date": "string",
    "temperature_c": "float64",
    "global_budget_gt_co2": "float64",
    "is_afolu_included": "boolean",
    "production_centric": "boolean",
    "scope": "string",
    "sector": "string",
    "sector_reported": "string",
    "region": "string",
    "year": "Int64",
    "base_year": "Int64",
    "intensity": "float64",
    "unit": "string",
    "intensity_reported": "float64",
    "unit_reported": "string",
}

PRODUCTION_PATHWAY_COLUMNS: dict[str, str] = {
    "scenario_name": "string",
    "release_date": "string",
    "temperature_c": "float64",
    "sector": "string",
    "region": "string",
    "year": "Int64",
    "base_year": "Int64",
    "growth_rate": "float64",
    "production_index": "float64",
    "base_year_production": "float64",
    "unit": "string",
    "base_year_production_reported": "string",
}


def itr_region(region_ar6_10: str | None) -> str:
    """ITR's coarse region from the AR6 10-region name: North America, Europe, Asia (any *Asia*), else Global."""
    if not region_ar6_10:
        return "Global"
    if region_ar6_10 in ("North America", "Europe"):
        return region_ar6_10
    if "Asia" in region_ar6_10:
        return "Asia"
    return "Global"


# --------------------------------------------------------------------------------------------------
# country_regions
# --------------------------------------------------------------------------------------------------
def country_regions(
    country_region_info: pd.DataFrame, region_classification: pd.DataFrame, oecd_iso: pd.DataFrame
) -> Cleaned:
    """One row per country with ISO codes, names/aliases and every region classification.

    Inputs: ``country_region_info.csv``, ``region_classification.csv``, ``oecd_iso.csv`` (default read_csv).

    Output columns: ``iso2`` (ISO 3166-1 alpha-2; Namibia's ``NA`` restored: ``read_csv`` reads it as NaN),
    ``iso3``, ``iso_numeric``, ``country_name`` (ISO short name), ``official_name``, ``common_name``,
    ``aliases`` (``|``-separated other names: World Bank name from region_classification, extra aliases
    such as ``UK``/``Great Britain``, legacy codes ITR accepts: ``SP``, ``LX``, ``JN``, ``PO``),
    ``region_ar6_6``/``_10``/``_22``/``_dev`` (IPCC AR6 regions), ``is_oecd`` (member in oecd_iso.csv),
    ``itr_region`` (ITR's company region: North America / Europe / Asia / Global from region_ar6_10),
    ``iso_status`` (``current``; ``withdrawn`` for ANT/SCG, which exist only in region_classification).

    Rejected: rows without an alpha-3 code; repeated alpha-3 codes (first kept).
    """
    cleaned = Cleaned(data=pd.DataFrame())
    info = country_region_info.copy()
    info["alpha_3"] = info["alpha_3"].map(clean_text)
    no_iso3 = info["alpha_3"].isna()
    cleaned.reject("country_region_info: missing alpha_3", int(no_iso3.sum()))
    info = info[~no_iso3]
    dup = info["alpha_3"].duplicated()
    cleaned.reject("country_region_info: duplicate alpha_3", int(dup.sum()))
    info = info[~dup]
    # pd.read_csv's default na_values turn Namibia's ISO code "NA" into NaN
    info["alpha_2"] = info["alpha_2"].map(clean_text)
    info.loc[info["alpha_2"].isna() & info["alpha_3"].eq("NAM"), "alpha_2"] = "NA"

    rc = region_classification.copy()
    rc["ISO"] = rc["ISO"].map(clean_text)
    rc_missing = rc["ISO"].isna()
    cleaned.reject("region_classification: missing ISO", int(rc_missing.sum()))
    rc = rc[~rc_missing]
    rc_dup = rc["ISO"].duplicated()
    cleaned.reject("region_classification: duplicate ISO", int(rc_dup.sum()))
    rc = rc[~rc_dup].set_index("ISO")

    oecd2 = {clean_text(v) for v in oecd_iso["alpha_2"]} - {None}
    oecd3 = {clean_text(v) for v in oecd_iso["alpha_3"]} - {None}

    rows: list[dict[str, Any]] = []
    seen3: set[str] = set()
    region_cols = ["region_ar6_6", "region_ar6_10", "region_ar6_22", "region_ar6_dev"]
    for rec in info.to_dict("records"):
        iso2, iso3 = rec["alpha_2"], rec["alpha_3"]
        seen3.add(iso3)
        names = {
            clean_text(rec.get("name")),
            clean_text(rec.get("official_name")),
            clean_text(rec.get("common_name")),
        }
        aliases: list[str] = []
        if iso3 in rc.index:
            wb_name = clean_text(rc.at[iso3, "name"])
            if wb_name and wb_name not in names:
                aliases.append(wb_name)
        aliases += [a for a in COUNTRY_ALIASES.get(iso2 or "", ()) if a not in names and a not in aliases]
        row = {
            "iso2": iso2,
            "iso3": iso3,
            "iso_numeric": rec.get("numeric"),
            "country_name": clean_text(rec.get("name")),
            "official_name": clean_text(rec.get("official_name")),
            "common_name": clean_text(rec.get("common_name")),
            "aliases": "|".join(aliases) or None,
            **{c: clean_text(rec.get(c)) for c in region_cols},
            "is_oecd": iso2 in oecd2 or iso3 in oecd3,
            "iso_status": "current",
        }
        rows.append(row)
    for iso3, rec in rc.iterrows():
        if iso3 in seen3:
            continue
        rows.append(
            {
                "iso2": WITHDRAWN_ISO2.get(str(iso3)),
                "iso3": iso3,
                "iso_numeric": None,
                "country_name": clean_text(rec["name"]),
                "official_name": None,
                "common_name": None,
                "aliases": None,
                **{c: clean_text(rec[c]) for c in region_cols},
                "is_oecd": False,
                "iso_status": "withdrawn",
            }
        )
    for row in rows:
        row["itr_region"] = itr_region(row["region_ar6_10"])
    cleaned.data = typed_frame(rows, COUNTRY_REGION_COLUMNS).sort_values("iso3", ignore_index=True)
    return cleaned


# --------------------------------------------------------------------------------------------------
# benchmark pathways
# --------------------------------------------------------------------------------------------------
def _parse_temperature(text: Any) -> float:
    m = re.match(r"^\s*([-+]?\d+(?:\.\d+)?)", str(text))
    if not m:
        raise ValueError(f"benchmark_temperature {text!r} is not a number of degrees")
    return float(m.group(1))


def _parse_budget_gt(text: Any) -> float:
    value, unit = parse_quantity(str(text))
    if unit != "t CO2e":
        raise ValueError(f"benchmark_global_budget {text!r} is not an emissions amount")
    return value / 1e9


def _metric_unit(metric: Any) -> str | None:
    if isinstance(metric, dict):
        metric = metric.get("units")
    return clean_text(metric)


def _projections(bm: dict[str, Any]) -> list[dict[str, Any]]:
    return bm.get("projections_nounits") or bm.get("projections") or []


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        return float(value.strip())  # "-inf" -> -inf, other text raises
    return float(value)


def intensity_pathways(benchmark_json: dict[str, Any], benchmark_id: str) -> Cleaned:
    """Long table of one emission-intensity benchmark (one partition per ``benchmark_id``).

    Input: a parsed ``benchmark_EI_*.json`` (see :data:`BENCHMARK_FILES`).

    Output, one row per (scope, sector, region, year): ``benchmark_id``, ``scenario_name``, ``release_date``
    (as in the file), ``temperature_c`` (e.g. 1.5 from ``"1.5 delta_degC"``), ``global_budget_gt_co2``
    (e.g. 396.0 from ``"396 Gt CO2"``), ``is_afolu_included``, ``production_centric`` (per scope, <NA> if
    not stated), ``scope`` (S1, S2, S1S2, S3, S1S2S3), ``sector`` (company naming: ``Aluminium`` ->
    ``Aluminum``), ``sector_reported``, ``region`` (Global, Europe, North America, OECD, non-OECD),
    ``year``, ``base_year`` (first projection year of that pathway), ``intensity`` in ``unit``, the
    canonical ``t CO2e/<production unit>`` (mesh_assets.ingest.units; CO2 counted as CO2e), and the value/unit
    as reported (``intensity_reported``, ``unit_reported``).

    Rejected (counted per projection row): unknown/unconvertible unit (reason names the unit),
    non-finite or non-numeric values (``"-inf"`` in OECM_PC S1 Coal Europe 2050), a scope whose
    ``benchmarks`` is not a list, duplicate (scope, sector, region, year) (first kept).
    """
    cleaned = Cleaned(data=pd.DataFrame())
    temperature = _parse_temperature(benchmark_json.get("benchmark_temperature"))
    budget = _parse_budget_gt(benchmark_json.get("benchmark_global_budget"))
    afolu = benchmark_json.get("is_AFOLU_included")
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, int]] = set()
    for scope, block in benchmark_json.items():
        if not isinstance(block, dict) or "benchmarks" not in block:
            continue
        benchmarks = block.get("benchmarks")
        if not isinstance(benchmarks, list):
            cleaned.reject(f"scope {scope}: benchmarks is not a list", 1)
            continue
        production_centric = block.get("production_centric")
        for bm in benchmarks:
            projections = _projections(bm)
            unit_reported = _metric_unit(bm.get("benchmark_metric"))
            try:
                unit = canonical_unit(unit_reported or "")
                factor = conversion_factor(unit_reported or "", unit)
            except UnknownUnitError:
                cleaned.reject(f"unknown unit {unit_reported!r}", len(projections))
                continue
            if not unit.startswith("t CO2e/"):
                cleaned.reject(f"unit {unit_reported!r} is not an emission intensity", len(projections))
                continue
            sector_reported = clean_text(bm.get("sector"))
            sector = SECTOR_ALIASES.get(sector_reported or "", sector_reported)
            region = clean_text(bm.get("region"))
            years = [p.get("year") for p in projections if isinstance(p.get("year"), int)]
            base_year = min(years) if years else None
            for p in projections:
                try:
                    value = _as_float(p.get("value"))
                except (TypeError, ValueError):
                    cleaned.reject("non-numeric intensity value", 1)
                    continue
                if not math.isfinite(value):
                    cleaned.reject("non-finite intensity value", 1)
                    continue
                key = (scope, sector or "", region or "", int(p["year"]))
                if key in seen:
                    cleaned.reject("duplicate scope/sector/region/year", 1)
                    continue
                seen.add(key)
                rows.append(
                    {
                        "benchmark_id": benchmark_id,
                        "scenario_name": clean_text(bm.get("scenario name")),
                        "release_date": clean_text(bm.get("release date")),
                        "temperature_c": temperature,
                        "global_budget_gt_co2": budget,
                        "is_afolu_included": afolu,
                        "production_centric": production_centric,
                        "scope": scope,
                        "sector": sector,
                        "sector_reported": sector_reported,
                        "region": region,
                        "year": int(p["year"]),
                        "base_year": base_year,
                        "intensity": value * factor,
                        "unit": unit,
                        "intensity_reported": value,
                        "unit_reported": unit_reported,
                    }
                )
    data = typed_frame(rows, INTENSITY_PATHWAY_COLUMNS)
    cleaned.data = data.sort_values(["scope", "sector", "region", "year"], ignore_index=True)
    return cleaned


def production_pathways(benchmark_json: dict[str, Any]) -> Cleaned:
    """OECM production pathways: yearly growth and a cumulative production index per sector/region.

    Input: parsed ``benchmark_production_OECM.json``.

    Output, one row per (sector, region, year): ``scenario_name``, ``release_date``, ``temperature_c``,
    ``sector``, ``region``, ``year``, ``base_year`` (first year), ``growth_rate`` (the file's dimensionless
    value: growth of production from the previous year; 0 in the base year), ``production_index``
    (cumulative product of ``1 + growth_rate`` since the base year, base year = 1.0; reaches 0 when a
    sector is phased out, e.g. Coal Europe), ``base_year_production`` in canonical ``unit``
    (``'1869.6 Fe * megametric_ton'`` -> 1.8696e9 ``t Steel``) and ``base_year_production_reported``.

    Rejected: non-finite/non-numeric growth values, unparseable base-year production (reason names the
    unit; the rows are still counted, not kept), duplicates.
    """
    cleaned = Cleaned(data=pd.DataFrame())
    temperature = _parse_temperature(benchmark_json.get("benchmark_temperature"))
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    for block in benchmark_json.values():
        if not isinstance(block, dict) or not isinstance(block.get("benchmarks"), list):
            continue
        for bm in block["benchmarks"]:
            projections = sorted(_projections(bm), key=lambda p: p.get("year", 0))
            reported = clean_text(bm.get("base_year_production"))
            try:
                base_value, unit = parse_quantity(reported or "")
            except UnknownUnitError:
                cleaned.reject(f"unknown unit in base_year_production {reported!r}", len(projections))
                continue
            sector = SECTOR_ALIASES.get(clean_text(bm.get("sector")) or "", clean_text(bm.get("sector")))
            region = clean_text(bm.get("region"))
            base_year = projections[0]["year"] if projections else None
            index = 1.0
            for i, p in enumerate(projections):
                try:
                    growth = _as_float(p.get("value"))
                except (TypeError, ValueError):
                    cleaned.reject("non-numeric growth value", 1)
                    continue
                if not math.isfinite(growth):
                    cleaned.reject("non-finite growth value", 1)
                    continue
                key = (sector or "", region or "", int(p["year"]))
                if key in seen:
                    cleaned.reject("duplicate sector/region/year", 1)
                    continue
                seen.add(key)
                if i > 0:
                    index = max(index * (1.0 + growth), 0.0)
                rows.append(
                    {
                        "scenario_name": clean_text(bm.get("scenario name")),
                        "release_date": clean_text(bm.get("release date")),
                        "temperature_c": temperature,
                        "sector": sector,
                        "region": region,
                        "year": int(p["year"]),
                        "base_year": base_year,
                        "growth_rate": growth,
                        "production_index": index,
                        "base_year_production": base_value,
                        "unit": unit,
                        "base_year_production_reported": reported,
                    }
                )
    data = typed_frame(rows, PRODUCTION_PATHWAY_COLUMNS)
    cleaned.data = data.sort_values(["sector", "region", "year"], ignore_index=True)
    return cleaned
