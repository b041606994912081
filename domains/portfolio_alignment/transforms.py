"""Portfolio alignment domain: holdings, company temperature scores, the portfolio temperature score.

Pure functions: DataFrames in, :class:`mesh_assets.cleaning.Cleaned` out. No I/O, no Dagster. The method is
in ``docs/portfolio-alignment-method.md``; the scoring engine is :mod:`domains.portfolio_alignment.scoring`.
Output dtypes: text ``string``, years/counts ``Int64``, measures ``float64``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from domains.portfolio_alignment import scoring
from mesh_assets.ingest.cleaning import Cleaned, clean_text, typed_frame
from mesh_assets.ingest.identifiers import clean_lei, is_valid_isin, split_company_id

HOLDINGS_COLUMNS: dict[str, str] = {
    "company_id": "string",
    "base_company_id": "string",
    "sector_split": "string",
    "company_name": "string",
    "isin": "string",
    "isin_reported": "string",
    "lei": "string",
    "investment_value_eur": "float64",
    "source_row": "Int64",
    "quality_flags": "string",
}

SCORE_COLUMNS: dict[str, str] = {
    "company_id": "string",
    "base_company_id": "string",
    "company_name": "string",
    "sector": "string",
    "region": "string",
    "scope": "string",
    "benchmark_id": "string",
    "benchmark_sector": "string",
    "benchmark_region": "string",
    "benchmark_scope": "string",
    "benchmark_temperature_c": "float64",
    "global_budget_gt_co2": "float64",
    "intensity_unit": "string",
    "data_segment": "string",
    "base_year": "Int64",
    "base_year_emissions_t_co2e": "float64",
    "emissions_basis": "string",
    "base_year_production": "float64",
    "production_unit_reported": "string",
    "base_year_intensity": "float64",
    "benchmark_intensity_base_year": "float64",
    "projected_intensity_2030": "float64",
    "projected_intensity_2050": "float64",
    "trend_annual_rate": "float64",
    "n_targets_used": "Int64",
    "netzero_year": "Int64",
    "cumulative_emissions_t_co2e": "float64",
    "cumulative_budget_t_co2e": "float64",
    "overshoot_ratio": "float64",
    "cumulative_trajectory_t_co2e": "float64",
    "trajectory_overshoot_ratio": "float64",
    "trajectory_score_c": "float64",
    "target_score_c": "float64",
    "score_result_type": "string",
    "temperature_score_uncapped_c": "float64",
    "score_capped": "boolean",
    "temperature_score_c": "float64",
    "score_source": "string",
    "default_reason": "string",
}

PORTFOLIO_COLUMNS: dict[str, str] = {
    "benchmark_id": "string",
    "scope": "string",
    "method": "string",
    "temperature_score_c": "float64",
    "n_holdings": "Int64",
    "n_holdings_data_based": "Int64",
    "n_holdings_default": "Int64",
    "total_value_eur": "float64",
    "data_based_value_eur": "float64",
    "coverage_value_share": "float64",
    "method_value_eur": "float64",
    "method_value_share": "float64",
    "n_holdings_no_company_data": "Int64",
}


# --------------------------------------------------------------------------------------------------
# portfolio_holdings
# --------------------------------------------------------------------------------------------------
def portfolio_holdings(portfolio: pd.DataFrame) -> Cleaned:
    """Portfolio positions with parsed identifiers and the value in EUR.

    Input: ``portfolio.csv`` (``investment_value [EUR]``).

    Output columns: ``company_id`` (as reported), ``base_company_id`` and ``sector_split``
    (``CA3495531079+Electricity Utilities`` -> ``CA3495531079`` / ``Electricity Utilities``), ``company_name``,
    ``isin`` (``company_isin`` when it is a valid ISIN, else the base id when that is one, else <NA>;
    ``US0921131092-E`` -> ``US0921131092``), ``isin_reported``, ``lei`` (valid ISO 17442 only),
    ``investment_value_eur``, ``source_row`` (line in portfolio.csv, header = 1), ``quality_flags``.

    Rejected: missing company_id; missing, non-numeric or negative investment value. Repeated
    company_ids are kept (a portfolio may hold a line twice) and flagged ``duplicate_company_id``.
    """

    cleaned = Cleaned(data=pd.DataFrame())
    value_col = next((c for c in portfolio.columns if c.strip().lower().startswith("investment_value")), None)
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(portfolio.to_dict("records")):
        flags: list[str] = []
        cid = clean_text(rec.get("company_id"))
        if cid is None:
            cleaned.reject("missing company_id", 1)
            continue
        raw_value = rec.get(value_col) if value_col else None
        try:
            value = float(raw_value)
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value) or value < 0:
            cleaned.reject("missing, non-numeric or negative investment value", 1)
            continue
        base, sector_split = split_company_id(cid) if "+" in cid else (cid, None)
        isin_reported = clean_text(rec.get("company_isin"))
        if is_valid_isin(isin_reported):
            isin = isin_reported
        elif is_valid_isin(base):
            isin = base
            flags.append("isin_from_company_id")
        elif isin_reported is not None and is_valid_isin(isin_reported.split("-")[0]):
            isin = isin_reported.split("-")[0]
            flags.append("isin_suffix_removed")
        else:
            isin = None
            flags.append("isin_missing_or_invalid")
        lei, lei_flag = clean_lei(rec.get("company_lei"))
        if lei_flag:
            flags.append(lei_flag)
        rows.append(
            {
                "company_id": cid,
                "base_company_id": base,
                "sector_split": sector_split,
                "company_name": clean_text(rec.get("company_name")),
                "isin": isin,
                "isin_reported": isin_reported,
                "lei": lei,
                "investment_value_eur": value,
                "source_row": i + 2,
                "quality_flags": flags,
            }
        )
    counts = pd.Series([r["company_id"] for r in rows]).value_counts()
    for r in rows:
        if counts.get(r["company_id"], 0) > 1:
            r["quality_flags"].append("duplicate_company_id")
        r["quality_flags"] = "|".join(r["quality_flags"]) or None
    cleaned.data = typed_frame(rows, HOLDINGS_COLUMNS)
    return cleaned


# --------------------------------------------------------------------------------------------------
# company_temperature_scores
# --------------------------------------------------------------------------------------------------
def _fx_table(company_master: pd.DataFrame) -> dict[str, float]:
    fx = (
        company_master.dropna(subset=["currency", "fx_rate_to_eur"])
        .groupby("currency")["fx_rate_to_eur"]
        .median()
    )
    table = {str(k): float(v) for k, v in fx.items() if v > 0}
    table["EUR"] = 1.0
    return table


def _entities(company_master: pd.DataFrame, company_targets: pd.DataFrame, emissions: pd.DataFrame,
              production: pd.DataFrame, cleaned: Cleaned) -> list[dict[str, Any]]:  # fmt: skip
    master = company_master.drop_duplicates("company_id").set_index("company_id", drop=False)
    entities: list[dict[str, Any]] = []
    for rec in master.to_dict("records"):
        entities.append(
            {
                "company_id": rec["company_id"],
                "base_company_id": rec["company_id"],
                "company_name": rec["company_name"],
                "sector": clean_text(rec["sector"]),
                "region": clean_text(rec["region"]),
                "is_oecd": None if pd.isna(rec["is_oecd"]) else bool(rec["is_oecd"]),
                "segment": None,
                "is_split": False,
            }
        )
    # synthetic sector splits: ids used by targets (ISIN+Sector), and companies reporting both
    # emissions and production for a business segment of another sector than their own
    split_ids: set[tuple[str, str]] = set()
    if len(company_targets):
        tgt = company_targets.dropna(subset=["sector_split"])
        for base, sector, n in (
            tgt.groupby(["base_company_id", "sector_split"]).size().reset_index().itertuples(index=False)
        ):
            if base in master.index:
                split_ids.add((base, sector))
            else:
                cleaned.reject("targets of a sector split whose company is not in company_master", int(n))
    seg_em = set(
        map(tuple, emissions.dropna(subset=["segment"])[["company_id", "segment"]].drop_duplicates().values)
    )
    seg_pr = set(
        map(tuple, production.dropna(subset=["segment"])[["company_id", "segment"]].drop_duplicates().values)
    )
    for base, segment in seg_em & seg_pr:
        if base in master.index and master.at[base, "sector"] != segment:
            split_ids.add((base, segment))
    for base, sector in sorted(split_ids):
        rec = master.loc[base]
        entities.append(
            {
                "company_id": f"{base}+{sector}",
                "base_company_id": base,
                "company_name": rec["company_name"],
                "sector": sector,
                "region": clean_text(rec["region"]),
                "is_oecd": None if pd.isna(rec["is_oecd"]) else bool(rec["is_oecd"]),
                "segment": sector,
                "is_split": True,
            }
        )
    return entities


def company_temperature_scores(
    company_master: pd.DataFrame,
    reported_emissions: pd.DataFrame,
    production: pd.DataFrame,
    company_targets: pd.DataFrame,
    intensity_pathways: pd.DataFrame,
    benchmark_id: str,
    scopes: tuple[str, ...] = ("S1", "S1S2", "S3", "S1S2S3"),
    production_pathways: pd.DataFrame | None = None,
    emission_intensities: pd.DataFrame | None = None,
) -> Cleaned:
    """Temperature score per company (and synthetic sector split) and scope, against one benchmark.

    Inputs are the outputs of company_master, reported_emissions, production, company_targets and
    intensity_pathways (all partitions or just ``benchmark_id``'s: rows are filtered on it).

    One row per entity and scope (default S1S2). Entities: every company_master row, plus
    ``ISIN+Sector`` splits that targets refer to or for which a company reports segment emissions and
    production of another sector. Columns: ``company_id``, ``base_company_id``, ``company_name``,
    ``sector``, ``region``, ``scope``, ``benchmark_id``, ``benchmark_sector``/``benchmark_region``/``benchmark_scope`` (the
    pathway used; S1 when the benchmark has no S1S2 pathway for the sector, e.g. TPI power), ``benchmark_temperature_c``, ``global_budget_gt_co2``, ``intensity_unit`` (benchmark
    unit, company intensities are expressed in it), ``data_segment`` (segment whose figures were used;
    <NA> = whole company), ``base_year``, ``base_year_emissions_t_co2e``, ``emissions_basis`` (reported | reported intensity x production | S1+S2 | S1+allocated S2 |
    S1 only (no S2 reported), and for S1S2S3 built from those + S3), ``base_year_production`` (in the
    benchmark denominator unit), ``production_unit_reported`` (canonical unit of the production used),
    ``base_year_intensity``, ``benchmark_intensity_base_year``, ``projected_intensity_2030``/``_2050``,
    ``trend_annual_rate`` (trend projections), ``n_targets_used``/``netzero_year`` (target projections),
    ``cumulative_emissions_t_co2e`` and ``cumulative_budget_t_co2e`` (2019 .. 2050, production grown
    with the benchmark's production pathway), ``overshoot_ratio`` (= CE / CB), ``temperature_score_uncapped_c``,
    ``score_capped`` (the score hit the 4.4 C ceiling), ``temperature_score_c``,
    ``score_source`` (target | trend | default), ``default_reason``.

    Nothing is dropped: entities without usable data get 3.2 C with ``score_source = 'default'``.
    ``rejected`` counts target rows of splits whose company is not in company_master.
    """
    cleaned = Cleaned(data=pd.DataFrame())
    pathways = intensity_pathways[intensity_pathways["benchmark_id"] == benchmark_id]
    if pathways.empty:
        raise ValueError(f"intensity_pathways has no rows for benchmark_id {benchmark_id!r}")
    ctx = scoring.Context(
        emissions=scoring.index_emissions(reported_emissions),
        production={str(k): g for k, g in production.groupby("company_id")},
        targets={str(k): g for k, g in company_targets.groupby("company_id")},
        pathways=scoring.index_pathways(pathways),
        fx_to_eur=_fx_table(company_master),
        benchmark_id=benchmark_id,
        production_index=(
            scoring.index_production_pathways(production_pathways)
            if production_pathways is not None
            else None
        ),
        intensities=(
            {str(k): g for k, g in emission_intensities.groupby("company_id")}
            if emission_intensities is not None
            else None
        ),
    )
    entities = _entities(company_master, company_targets, reported_emissions, production, cleaned)
    splits: dict[str, tuple[str, ...]] = {}
    for entity in entities:
        if entity["is_split"]:
            splits[entity["base_company_id"]] = (
                *splits.get(entity["base_company_id"], ()),
                entity["segment"],
            )
    ctx.splits = splits
    rows = [scoring.score_entity(ctx, entity, scope) for entity in entities for scope in scopes]
    cleaned.data = typed_frame(rows, SCORE_COLUMNS)
    return cleaned


# --------------------------------------------------------------------------------------------------
# portfolio_temperature_score
# --------------------------------------------------------------------------------------------------
def _weighted(values: pd.Series, weights: pd.Series) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else math.nan


# method -> company_master column dividing the holding's value (owned-emissions methods, ITR 1.1.10)
OWNERSHIP_DENOMINATORS: dict[str, str] = {
    "MOTS": "market_cap_eur",
    "EOTS": "ev_eur",
    "ECOTS": "evic_eur",
    "AOTS": "assets_eur",
    "ROTS": "revenue_eur",
}


def portfolio_temperature_score(  # reference implementation of the dbt model
    portfolio_holdings: pd.DataFrame, company_temperature_scores: pd.DataFrame, company_master: pd.DataFrame
) -> Cleaned:
    """Portfolio temperature score per benchmark, scope and aggregation method.

    Each holding takes the score of its ``company_id`` (sector splits included); if there is none, the
    score of its ``base_company_id`` (flagged as data-based only if that score is); otherwise the default
    3.2 C. Methods (one row each, per benchmark and scope; a method without any eligible holding has
    no row):

    * ``WATS``: value-weighted average over all holdings, T = sum(v_i T_i) / sum(v_i); defaults count at 3.2 C.
    * ``WATS_data_only``: the same over holdings with a target/trend score only.
    * ``TETS``: weighted by the base-year emissions E_i of the score, over data-based holdings.
    * ``MOTS``/``EOTS``/``ECOTS``/``AOTS``/``ROTS``: owned emissions w_i = (v_i / D_i) x E_i with D the
      market cap, EV, EVIC, total assets or revenue (company_master), over data-based holdings with D > 0.

    Columns: ``benchmark_id``, ``scope``, ``method``, ``temperature_score_c``, ``n_holdings``,
    ``n_holdings_data_based``, ``n_holdings_default``, ``total_value_eur``, ``data_based_value_eur``,
    ``coverage_value_share`` (data-based value / total value), ``method_value_eur`` and
    ``method_value_share`` (value of the holdings the method averages over), ``n_holdings_no_company_data``.
    """
    cleaned = Cleaned(data=pd.DataFrame())
    scores = company_temperature_scores.drop_duplicates(["company_id", "scope", "benchmark_id"])
    master = company_master.drop_duplicates("company_id").set_index("company_id")
    rows: list[dict[str, Any]] = []
    for (benchmark_id, scope), sc in scores.groupby(["benchmark_id", "scope"]):
        h = holding_scores(portfolio_holdings, sc, master)
        value = h["investment_value_eur"].astype(float)
        total = float(value.sum())
        data_value = float(value[h["data_based"]].sum())
        common = {
            "benchmark_id": benchmark_id,
            "scope": scope,
            "n_holdings": len(h),
            "n_holdings_data_based": int(h["data_based"].sum()),
            "n_holdings_default": int((~h["data_based"]).sum()),
            "n_holdings_no_company_data": int((~h["has_company"]).sum()),
            "total_value_eur": total,
            "data_based_value_eur": data_value,
            "coverage_value_share": data_value / total if total else math.nan,
        }
        for method, weights in method_weights(h).items():
            ok = weights.notna()
            if not ok.any() or float(weights[ok].sum()) <= 0:
                continue
            method_value = float(value[ok].sum())
            rows.append(
                {**common, "method": method,
                 "temperature_score_c": _weighted(h.loc[ok, "temperature_score_c"], weights[ok]),
                 "method_value_eur": method_value, "method_value_share": method_value / total if total else math.nan}
            )  # fmt: skip
    cleaned.data = typed_frame(rows, PORTFOLIO_COLUMNS)
    return cleaned


def holding_scores(
    portfolio_holdings: pd.DataFrame, scores: pd.DataFrame, master: pd.DataFrame
) -> pd.DataFrame:
    """Holdings of one benchmark and scope with the score each takes and its weighting inputs."""
    by_id = scores.set_index("company_id")
    h = portfolio_holdings.copy()
    picked, scored_ids = [], []
    for cid, base in zip(h["company_id"], h["base_company_id"], strict=True):
        key = cid if cid in by_id.index else (base if base in by_id.index else None)
        picked.append(by_id.loc[key] if key is not None else None)
        scored_ids.append(key)
    h["scored_company_id"] = scored_ids
    h["has_company"] = [p is not None for p in picked]
    h["temperature_score_c"] = [
        float(p["temperature_score_c"]) if p is not None else scoring.DEFAULT_SCORE_C for p in picked
    ]
    h["data_based"] = [p is not None and p["score_source"] != "default" for p in picked]
    h["emissions"] = [
        float(p["base_year_emissions_t_co2e"])
        if p is not None and not pd.isna(p["base_year_emissions_t_co2e"])
        else math.nan
        for p in picked
    ]
    for column in OWNERSHIP_DENOMINATORS.values():
        series = master[column] if column in master else pd.Series(dtype=float)
        h[column] = [
            float(v) if not pd.isna(v := series.get(cid, series.get(base, math.nan))) else math.nan
            for cid, base in zip(h["company_id"], h["base_company_id"], strict=True)
        ]
    return h


def method_weights(h: pd.DataFrame) -> dict[str, pd.Series]:
    """Weight of each holding per aggregation method (NaN = not part of the method)."""
    value = h["investment_value_eur"].astype(float)
    emissions = h["emissions"].where(h["data_based"])
    out = {
        "WATS": value,
        "WATS_data_only": value.where(h["data_based"]),
        "TETS": emissions,
    }
    for method, column in OWNERSHIP_DENOMINATORS.items():
        denominator = h[column].where(h[column] > 0)
        out[method] = value / denominator * emissions
    return out
