"""Company temperature scores by the method of the ITR tool 1.1.10 (docs/portfolio-alignment-method.md).

For one company ("entity": a company_master row, or a synthetic sector split ``ISIN+Sector``) and one
scope (S1, S1S2, S3, S1S2S3):

1. benchmark pathway: same sector (aliases in :data:`SECTOR_FALLBACKS`), the company's region if the
   benchmark has it, else OECD/non-OECD (if present), else Global; when the benchmark has no S1S2 pathway
   for the sector but an S1 one (TPI power), S1 is scored against it (``benchmark_scope``);
2. base year ``Y0``: latest year with both emissions and production (production converted into the
   benchmark's denominator unit); base intensity ``I0 = E(Y0) / P(Y0)``;
3. intensity paths 2019..2050: reported intensities up to ``Y0``, then the trajectory (median
   year-on-year change of the winsorized history, clipped to [-10 %, +3 %] a year) and, with a
   binding target, the target path (a constant yearly rate between milestones as ITR's, zero at net
   zero); without targets of its own, as ITR infers them: S1S2 of a company with S1 targets is the S1
   target path plus an S2 path along the benchmark's, S1S2S3 the sum of the S1S2 and S3 target paths,
   and any other scope falls to zero by the net-zero year its neighbours imply;
4. production grows with the benchmark's production pathway; cumulative emissions and the budget are
   sums of production x intensity over 2019..2050;
5. ``T = T_bm + TCRE * B * (CE / CB - 1)`` per path (``B`` divided by 0.76 when the benchmark excludes
   AFOLU), blended ``0.5 target + 0.5 trajectory`` (target only when the trajectory overshoots tenfold),
   capped at 4.4 C (flagged).

Entities without enough data get :data:`DEFAULT_SCORE_C` (3.2 C) and ``score_source = 'default'``.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mesh_assets.ingest.units import (
    UnknownUnitError,
    conversion_factor,
    gas_volume_to_energy_factor,
    unit_info,
)

# Transient climate response to cumulative emissions, ITR's constants: 2.2 C per 1000 Gt C, and
# 1000 Gt C = 3664 Gt CO2 (44/12), i.e. 0.0006004 C per Gt CO2.
TCRE_C = 2.2
CARBON_CONVERSION_GT_CO2 = 3664.0
TCRE_C_PER_GT_CO2 = TCRE_C / CARBON_CONVERSION_GT_CO2
DEFAULT_SCORE_C = 3.2  # ITR's default score for companies without data
# Ceiling of a company score: the warmest IPCC AR6 scenario (SSP5-8.5) reaches 4.4 C (2081-2100 best
# estimate, AR6 WG1 SPM Table SPM.1); a higher "temperature" only reflects extrapolated data breaks.
MAX_SCORE_C = 4.4
END_YEAR = 2050
TREND_MIN_RATE, TREND_MAX_RATE = -0.10, 0.03  # ITR ProjectionControls LOWER_DELTA / UPPER_DELTA
# ITR 1.1.10 (ProjectionControls.BASE_YEAR / TARGET_YEAR): cumulative emissions, budgets and the
# production projection run over 2019..2050, historic intensities standing in for the years reported.
ITR_BASE_YEAR = 2019
# ITR TemperatureScoreControls.target_probability: a company with a target and a trajectory scores
# p * target score + (1 - p) * trajectory score.
TARGET_PROBABILITY = 0.5
# ITR: when the trajectory overshoots its budget more than tenfold the trajectory is deemed runaway
# and the target score alone is used (score_result_type TARGET_ONLY).
RUNAWAY_OVERSHOOT = 10.0
# ITR: target paths fall at a constant yearly rate, except that a fall to below 1/11.11 of the start
# blends that rate with a linear share (see _compound_step).
CAGR_LIMIT = 1 / 11.11
# ITR: a benchmark whose global budget excludes land use (is_AFOLU_included false) has its budget
# divided by 0.76, the share of non-AFOLU emissions (396 Gt CO2 -> 521 Gt CO2 for OECM 1.5 C).
NON_AFOLU_SHARE = 0.76
# Quarantine: an uncapped score above 20 C means the company emits about 60x its budget (OECM 1.5 C),
# which no reported pathway does; it comes from a data break (a unit or scale slip in emissions,
# production or a reported intensity). Such a score is not published: the entity gets the default with
# the reason, counted like every default, so one bad input row cannot move a portfolio figure unseen.
QUARANTINE_SCORE_C = 20.0

# Scope scored -> scope used when the benchmark has no pathway for the sector in that scope.
SCOPE_FALLBACKS: dict[str, str] = {"S1S2": "S1"}

# a compound scope without targets of its own follows the sum of its parts' target paths (ITR)
SUMMED_PARTS: dict[str, tuple[str, str]] = {"S1S2": ("S1", "S2"), "S1S2S3": ("S1S2", "S3")}

# emissions_basis of S1S2 -> that of S1S2S3 built from it (S1S2 + S3)
S1S2S3_BASIS: dict[str, str] = {
    "reported": "S1S2+S3",
    "reported intensity x production": "S1S2 from intensity+S3",
    "S1+S2": "S1+S2+S3",
    "S1+allocated S2": "S1+allocated S2+S3",
    "S1 only (no S2 reported)": "S1+S3 (no S2 reported)",
}

# Sector -> the scope-3 category its benchmark's S3 pathway stands for, taken before a reported S3
# total (ITR 1.1.10's prioritize_submetric): fuel- and energy-related activities for power, use of sold
# products for fuels, gas and vehicles.
S3_SECTOR_CATEGORY: dict[str, str] = {
    "Electricity Utilities": "3",
    **dict.fromkeys(("Autos", "Energy", "Oil & Gas", "Coal", "Oil", "Gas", "Gas Utilities"), "11"),
}

# Company sector -> benchmark sectors to try, in order (after the exact name).
SECTOR_FALLBACKS: dict[str, tuple[str, ...]] = {
    "Aluminium": ("Aluminum",),
    "Oil": ("Oil & Gas",),
    "Gas": ("Oil & Gas",),
    "Energy": ("Oil & Gas",),
    "Utilities": ("Electricity Utilities",),
}


@dataclass
class Context:
    """Inputs prepared once for all entities."""

    # base company_id -> (segment or None, scope) -> year -> t CO2e (scope totals, no scope-3 categories)
    emissions: dict[str, dict[tuple[str | None, str], dict[int, float]]]
    production: dict[str, pd.DataFrame]  # base company_id -> production rows
    targets: dict[str, pd.DataFrame]  # entity company_id -> company_targets rows
    pathways: dict[tuple[str, str], pd.DataFrame]  # (sector, scope) -> rows of one benchmark
    fx_to_eur: dict[str, float]  # ISO currency -> EUR per unit
    benchmark_id: str
    # (sector, region) -> year -> production index (1.0 in the benchmark's base year), from the OECM
    # production pathways; empty -> production held constant
    production_index: dict[tuple[str, str], dict[int, float]] | None = None
    # base company_id -> emission_intensities rows (reported intensities: production = E / I)
    intensities: dict[str, pd.DataFrame] | None = None
    # base company_id -> the sectors of its sector splits (company emissions are allocated among them)
    splits: dict[str, tuple[str, ...]] | None = None
    # work done once per run (see _memo): each entity's score and target path per scope (S1S2S3 and
    # S1S2 build on other scopes'), its view of the company's figures, pathways, own-sector production
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)


def index_production_pathways(production_pathways: pd.DataFrame) -> dict[tuple[str, str], dict[int, float]]:
    """Production index by (sector, region) and year."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for (sector, region), g in production_pathways.groupby(["sector", "region"]):
        out[(str(sector), str(region))] = dict(
            zip(g["year"].astype(int), g["production_index"].astype(float), strict=True)
        )
    return out


def _production_growth(ctx: Context, sector: str, region: str) -> dict[int, float]:
    """The benchmark's production index for the pathway's sector and region (Global as fallback)."""
    table = ctx.production_index or {}
    for sec in (sector, *SECTOR_FALLBACKS.get(sector, ())):
        for reg in (region, "Global"):
            if (sec, reg) in table:
                return table[(sec, reg)]
    return {}


def _historic_path(intensity: dict[int, float], first: int, last: int) -> dict[int, float]:
    """Reported intensities for ``first..last``: gaps interpolated linearly, before the first report
    the first reported value (ITR fills its projection frame the same way from the historic data)."""
    known = sorted(y for y in intensity if y <= last)
    out: dict[int, float] = {}
    for t in range(first, last + 1):
        if t in intensity:
            out[t] = intensity[t]
        elif t < known[0]:
            out[t] = intensity[known[0]]
        else:
            lo = max(y for y in known if y < t)
            hi = min((y for y in known if y > t), default=None)
            out[t] = (
                intensity[lo]
                if hi is None
                else intensity[lo] + (intensity[hi] - intensity[lo]) * (t - lo) / (hi - lo)
            )
    return out


def _production_from_intensity(
    ctx: Context,
    em_all: dict[tuple[str | None, str], dict[int, float]],
    company_id: str,
    level: str | None,
    scope: str,
    bm_denominator: str,
    em_level: str | None,
) -> dict[int, float]:
    """Production in the benchmark unit as emissions / reported intensity of the same scope (S1S2, else S1).

    ITR's template loader does the same for companies that report an intensity but no production.
    Intensities are those reported at ``level``, emissions those of ``em_all`` at ``em_level``.
    """
    for source_scope in dict.fromkeys((scope, "S1S2", "S1")):
        intensity = _reported_intensity(ctx, company_id, level, source_scope, bm_denominator)
        if not intensity:
            continue
        emissions = {y: v for y, (v, _) in emissions_series(em_all, em_level, source_scope).items()}
        out = {y: emissions[y] / i for y, i in intensity.items() if i > 0 and y in emissions}
        if out:
            return out
    return {}


def _reported_intensity(
    ctx: Context, company_id: str, level: str | None, scope: str, bm_denominator: str
) -> dict[int, float]:
    """The scope's intensity reported at ``level`` (None = whole company), in t CO2e per benchmark unit, by
    year (the first convertible unit where a year is reported in several)."""
    table = (ctx.intensities or {}).get(company_id)
    if table is None or table.empty:
        return {}
    key = ("reported intensity", company_id, level, scope, bm_denominator)
    return _memo(ctx, key, lambda: _read_intensity(ctx, company_id, table, level, scope, bm_denominator))


def _read_intensity(
    ctx: Context, company_id: str, table: pd.DataFrame, level: str | None, scope: str, bm_denominator: str
) -> dict[int, float]:
    rows = _memo(ctx, ("intensity rows", company_id), lambda: table.to_dict("records"))
    by_unit: dict[str, list[tuple[int, float]]] = {}
    for rec in rows:
        segment = None if pd.isna(rec["segment"]) else rec["segment"]
        if rec["scope"] == scope and pd.isna(rec["s3_category"]) and segment == level:
            by_unit.setdefault(str(rec["unit"]), []).append((int(rec["year"]), float(rec["intensity"])))
    out: dict[int, float] = {}
    for unit in sorted(by_unit):
        factor = production_factor(denominator(unit), bm_denominator, ctx.fx_to_eur)
        if factor is None or factor <= 0:
            continue
        for year, value in by_unit[unit]:
            if value >= 0:
                out.setdefault(year, value / factor)
    return out


def _emissions_from_intensity(
    ctx: Context,
    company_id: str,
    level: str | None,
    scope: str,
    bm_denominator: str,
    production: dict[int, float],
) -> dict[int, float]:
    """Emissions of ``scope`` as its reported intensity times ``production`` (in the benchmark unit), by year.

    ITR's template loader turns every reported intensity into emissions with the company's production,
    which then rank as the scope's reported figure. Intensities are those reported at ``level``.
    """
    intensity = _reported_intensity(ctx, company_id, level, scope, bm_denominator) if production else {}
    return {y: i * production[y] for y, i in intensity.items() if y in production}


def itr_score(temperature: float, budget_gt: float, ratio: float) -> float:
    """ITR's score for an overshoot ratio: ``T_bm + TCRE * B * (R - 1)``."""
    return temperature + TCRE_C_PER_GT_CO2 * budget_gt * (ratio - 1.0)


def index_emissions(
    reported_emissions: pd.DataFrame,
) -> dict[str, dict[tuple[str | None, str], dict[int, float]]]:
    """reported_emissions as company -> (segment, scope) -> year -> t CO2e.

    Scope totals are keyed by their scope; a scope-3 category ``c`` by ``S3 category c`` (see
    :func:`s3_category_key`), so the category a benchmark's scope-3 pathway covers can stand in.
    """
    index: dict[str, dict[tuple[str | None, str], dict[int, float]]] = {}
    for cid, segment, scope, category, year, value in zip(
        reported_emissions["company_id"], reported_emissions["segment"], reported_emissions["scope"],
        reported_emissions["s3_category"], reported_emissions["year"], reported_emissions["emissions_t_co2e"],
        strict=True,
    ):  # fmt: skip
        name = str(scope) if pd.isna(category) else s3_category_key(str(category))
        key = (None if pd.isna(segment) else str(segment), name)
        index.setdefault(str(cid), {}).setdefault(key, {})[int(year)] = float(value)
    return index


def s3_category_key(category: str) -> str:
    """Index key of a scope-3 category's emissions (``'11'`` -> ``'S3 category 11'``)."""
    return f"S3 category {category}"


def own_sector_view(
    em_all: dict[tuple[str | None, str], dict[int, float]], sector: str
) -> dict[tuple[str | None, str], dict[int, float]]:
    """A whole company's emissions: its figures for its own sector (a segment named after the sector,
    e.g. an electric utility's "electricity" submetric) in front of its company-level figures, per
    scope and year, as company-level series.

    ITR 1.1.10's template loader ranks the submetrics that name a sector first when it picks a
    single-sector company's figure of a scope and year, and fills the years they lack from the
    other submetrics; scope sums (S1S2 + S3) are built afterwards from the picked figures.
    """
    view: dict[tuple[str | None, str], dict[int, float]] = {}
    for (segment, scope), series in em_all.items():
        if segment is None:
            view[(None, scope)] = {**series, **view.get((None, scope), {})}
        elif segment == sector:
            view[(None, scope)] = {**view.get((None, scope), {}), **series}
    return view


def index_pathways(pathways: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Benchmark rows by (sector, scope)."""
    return {(str(sector), str(scope)): g for (sector, scope), g in pathways.groupby(["sector", "scope"])}


def denominator(unit: str) -> str:
    """``'t CO2e/(t Steel)'`` -> ``'t Steel'``; ``'t CO2e/MWh'`` -> ``'MWh'``."""
    rest = unit.split("/", 1)[1].strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    return rest


def production_factor(from_unit: str, to_unit: str, fx_to_eur: dict[str, float]) -> float | None:
    """Factor turning an amount in canonical ``from_unit`` into ``to_unit``; None if not convertible.

    Same dimension -> pint; two currencies -> FX rates from the company master (via EUR);
    gas volume (``bcm CH4``) -> energy via natural-gas energy content.
    """
    if from_unit == to_unit:
        return 1.0
    try:
        return conversion_factor(from_unit, to_unit)
    except UnknownUnitError:
        pass
    try:
        kind_from, _ = unit_info(from_unit)
        kind_to, _ = unit_info(to_unit)
    except UnknownUnitError:
        return None
    if kind_from == "currency" and kind_to == "currency":
        rate_from, rate_to = fx_to_eur.get(from_unit), fx_to_eur.get(to_unit)
        if rate_from and rate_to:
            return rate_from / rate_to
        return None
    if kind_from == "gas_volume" and kind_to in ("energy", "electricity"):
        try:
            return conversion_factor(from_unit, "bcm CH4") * gas_volume_to_energy_factor(to_unit)
        except UnknownUnitError:
            return None
    return None


def pick_pathway(
    ctx: Context, sector: str, region: str | None, is_oecd: Any, scope: str
) -> pd.DataFrame | None:
    """The benchmark rows (one sector/region/scope, sorted by year) for a company, or None."""
    return _memo(
        ctx,
        ("pathway", sector, region, is_oecd, scope),
        lambda: _pick_pathway(ctx, sector, region, is_oecd, scope),
    )


def _memo(ctx: Context, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``key`` and context."""
    if key not in ctx.memo:
        ctx.memo[key] = compute()
    return ctx.memo[key]


def _pick_pathway(
    ctx: Context, sector: str, region: str | None, is_oecd: Any, scope: str
) -> pd.DataFrame | None:
    for bm_sector in (sector, *SECTOR_FALLBACKS.get(sector, ())):
        rows = ctx.pathways.get((bm_sector, scope))
        if rows is None or rows.empty:
            continue
        regions = set(rows["region"].dropna())
        candidates = []
        if region:
            candidates.append(region)
        if is_oecd is True:
            candidates.append("OECD")
        elif is_oecd is False:
            candidates.append("non-OECD")
        candidates.append("Global")
        for reg in candidates:
            if reg in regions:
                return rows[rows["region"] == reg].sort_values("year")
    return None


def allocation_weight(ctx: Context, entity: dict[str, Any], scope: str) -> float | None:
    """The share of its company's ``scope`` emissions a sector split carries, as ITR 1.1.10 allocates
    them (``_allocate_emissions``): the benchmark's emissions of the split's sector at the split's
    production, ``I_bm(sector, 2019) * P(2019)``, over the sum of those of the company's splits (the
    splits without a pathway for the scope or without 2019 production take no share). None when the
    split itself has none."""
    base = entity["base_company_id"]
    prod_all = ctx.production.get(base, pd.DataFrame(columns=["segment"]))
    shares: dict[str, float] = {}
    for sector in (ctx.splits or {}).get(base, ()):
        pathway = pick_pathway(ctx, sector, entity["region"], entity["is_oecd"], scope)
        if pathway is None:
            continue
        bm_2019 = pathway.loc[pathway["year"] == ITR_BASE_YEAR, "intensity"]
        rows = prod_all[prod_all["segment"] == sector]
        produced = _production_series(rows, denominator(str(pathway["unit"].iloc[0])), ctx.fx_to_eur)[0]
        if len(bm_2019) and ITR_BASE_YEAR in produced:
            shares[sector] = float(bm_2019.iloc[0]) * produced[ITR_BASE_YEAR]
    total = sum(shares.values())
    if entity["segment"] not in shares or total <= 0:
        return None
    return shares[entity["segment"]] / total


# scope -> itself and the scopes it contains
_SCOPE_PARTS: dict[str, frozenset[str]] = {
    "S1": frozenset({"S1"}),
    "S3": frozenset({"S3"}),
    "S1S2": frozenset({"S1", "S2", "S1S2"}),
    "S1S2S3": frozenset({"S1", "S2", "S1S2", "S3", "S1S2S3"}),
}


def split_view(
    ctx: Context, entity: dict[str, Any], em_all: dict[tuple[str | None, str], dict[int, float]]
) -> dict[tuple[str | None, str], dict[int, float]]:
    """A sector split's emissions: the company's figures, plus, for each scope (S1, S1S2, S3, S1S2S3)
    of which none of the company's splits reports any part on its own, the company-level figures times
    the split's :func:`allocation_weight`, as figures of the split's segment. ITR allocates only such
    scopes too: its loader drops a company-wide S1S2 when S1 is reported by sector, as a reported
    segment figure is better than a share of the total estimated from the benchmark."""
    splits = set((ctx.splits or {}).get(entity["base_company_id"], ())) | {entity["segment"]}
    view = dict(em_all)
    for (segment, key), series in em_all.items():
        scope = "S3" if key.startswith("S3 category") else key
        if segment is not None or scope not in ("S1", "S1S2", "S3", "S1S2S3"):
            continue
        # a scope a split reports, or a part of it (S1 of S1S2), is the splits' own: not allocated
        parts = _SCOPE_PARTS[scope]
        own = any(
            seg in splits and ("S3" if k.startswith("S3 category") else k) in parts for (seg, k) in em_all
        )
        weight = None if own else allocation_weight(ctx, entity, scope)
        if weight is not None:
            view[(entity["segment"], key)] = {y: v * weight for y, v in series.items()}
    return view


def own_sector_production(production: pd.DataFrame, sector: str) -> pd.DataFrame:
    """A whole company's production rows: those of its own sector's segment, then company-level rows
    for the (unit, product, year)s the segment lacks, as company-level rows (see :func:`own_sector_view`)."""
    if production.empty:
        return production
    own = production[production["segment"] == sector]
    company = production[production["segment"].isna()]
    if own.empty:
        return company
    key = ["unit", "product", "year"]
    covered = pd.MultiIndex.from_frame(own[key].astype(str))
    rest = company[~pd.MultiIndex.from_frame(company[key].astype(str)).isin(covered)]
    return pd.concat([own.assign(segment=pd.NA), rest], ignore_index=True)


def emissions_series(
    em_all: dict[tuple[str | None, str], dict[int, float]],
    level: str | None,
    scope: str,
    sector: str | None = None,
    from_intensity: dict[str, dict[int, float]] | None = None,
) -> dict[int, tuple[float, str]]:
    """Yearly emissions of ``scope`` at a segment level (None = whole company) with how they were built.

    Order per year: the reported figure; the scope's reported intensity times production
    (``from_intensity``, by scope: the company's own figure for the scope, which ITR's loader ranks as
    reported, before any sum of its parts); the sum of the reported parts (S1 + S2; S1S2 + S3); for a segment,
    segment S1 + company S2 allocated pro rata to the segment's share of S1; S1 alone when no S2 is
    reported at any level for that year (S1S2 only). Scope 3 of a ``sector`` in
    :data:`S3_SECTOR_CATEGORY` is the category its benchmark pathway covers where reported, else the
    reported total (ITR ranks that category first for those sectors).
    """
    own = {sc: series for (seg, sc), series in em_all.items() if seg == level}
    company = {sc: series for (seg, sc), series in em_all.items() if seg is None}
    all_s2_years = {y for (_, sc), series in em_all.items() if sc == "S2" for y in series}
    category = S3_SECTOR_CATEGORY.get(sector or "")
    if category is not None and s3_category_key(category) in own:
        own["S3"] = {**own.get("S3", {}), **own[s3_category_key(category)]}
    out: dict[int, tuple[float, str]] = {y: (v, "reported") for y, v in own.get(scope, {}).items()}
    for y, v in (from_intensity or {}).get(scope, {}).items():
        out.setdefault(y, (v, "reported intensity x production"))
    if scope == "S1S2S3":
        # S1S2 as this function builds it (reported, from its intensity, S1 + S2, a segment's allocated
        # S2, S2 as zero)
        s3 = own.get("S3", {})
        for y, (value, how) in emissions_series(em_all, level, "S1S2", sector, from_intensity).items():
            if y in s3:
                out.setdefault(y, (value + s3[y], S1S2S3_BASIS[how]))
    if scope != "S1S2":
        return out
    s1, s2 = own.get("S1", {}), own.get("S2", {})
    for y in set(s1) & set(s2):
        out.setdefault(y, (s1[y] + s2[y], "S1+S2"))
    if level is not None:
        # segment S1 + company S2 pro rata to the segment's share of S1 (company S1, else sum of segments)
        seg_s1_total: dict[int, float] = {}
        for (seg, sc), series in em_all.items():
            if seg is not None and sc == "S1":
                for y, v in series.items():
                    seg_s1_total[y] = seg_s1_total.get(y, 0.0) + v
        for y in set(s1) & set(company.get("S2", {})):
            denominator = company.get("S1", {}).get(y) or seg_s1_total.get(y)
            if denominator:
                out.setdefault(y, (s1[y] + company["S2"][y] * s1[y] / denominator, "S1+allocated S2"))
    if not all_s2_years and not own.get("S1S2"):
        # ITR: an entity reporting neither S2 nor S1S2 has its S2 taken as zero
        for y in s1:
            out.setdefault(y, (s1[y], "S1 only (no S2 reported)"))
    return out


def _production_series(
    prod: pd.DataFrame, bm_denominator: str, fx: dict[str, float]
) -> tuple[dict[int, float], str | None]:
    """Production in the benchmark's denominator unit (best-matching kind/product), and its source unit."""
    best: tuple[tuple[int, int, int], dict[int, float], str] | None = None
    for (unit, product), g in prod.groupby(["unit", prod["product"].fillna("")], dropna=False):
        factor = production_factor(str(unit), bm_denominator, fx)
        if factor is None:
            continue
        series = {int(y): float(v) * factor for y, v in zip(g["year"], g["value"], strict=True) if v > 0}
        if not series:
            continue
        score = (0 if unit == bm_denominator else 1, 0 if product == "" else 1, -max(series))
        if best is None or score < best[0]:
            best = (score, series, str(unit))
    if best is None:
        return {}, None
    return best[1], best[2]


def _level_production(
    ctx: Context, entity_id: str, prod_all: pd.DataFrame, level: str | None, bm_denominator: str
) -> tuple[bool, dict[int, float], str | None]:
    """Whether the entity has production rows at ``level`` (None = whole company), and their series and
    unit (:func:`_production_series`). Read once per entity, level and unit: every scope asks again."""

    def read() -> tuple[bool, dict[int, float], str | None]:
        at = prod_all["segment"].isna() if level is None else prod_all["segment"] == level
        rows = prod_all[at]
        if rows.empty:
            return False, {}, None
        return True, *_production_series(rows, bm_denominator, ctx.fx_to_eur)

    return _memo(ctx, ("production", entity_id, level, bm_denominator), read)


def _trend_rate(intensity: dict[int, float], base_year: int) -> float:
    """The trajectory's yearly rate as ITR 1.1.10 computes it (``EITrajectoryProjector``).

    The entity's intensities up to the base year, the years from :data:`ITR_BASE_YEAR` to the first report
    back-filled with it, are clipped to their own 10th/90th percentiles (winsorized, so one outlying year
    cannot set the trend), interior gaps interpolated linearly; the rate is the median of every
    year-on-year change, clipped to [-10 %, +3 %]. A series that reaches zero counts as a 100 % fall.
    """
    known = {y: v for y, v in intensity.items() if y <= base_year}
    if not known:
        return 0.0
    first = min(known)
    series = {**{y: known[first] for y in range(ITR_BASE_YEAR, first)}, **known}
    if len(series) < 2:
        return 0.0
    years = sorted(series)
    # ITR ProjectionControls LOWER_PERCENTILE / UPPER_PERCENTILE (0.1 / 0.9), by linear interpolation
    # ("inclusive": the pandas quantile ITR calls)
    deciles = statistics.quantiles(series.values(), n=10, method="inclusive")
    lower, upper = deciles[0], deciles[-1]
    clipped = {y: min(max(series[y], lower), upper) for y in years}
    path = _historic_path(clipped, years[0], years[-1])
    changes = [_year_on_year_change(path[y - 1], path[y]) for y in range(years[0] + 1, years[-1] + 1)]
    return min(max(statistics.median(changes), TREND_MIN_RATE), TREND_MAX_RATE)


def _year_on_year_change(before: float, after: float) -> float:
    """ITR's ratio: flat at zero stays 0; reaching zero (or overshooting it by rounding) is -100 %."""
    if before == 0.0 and after == 0.0:
        return 0.0
    if before >= 0.0 and after <= 0.0:
        return -1.0
    return after / before - 1.0 if before else math.inf


def _target_milestones(
    targets: Sequence[Mapping[str, Any]],
    bm_denominator: str,
    base_year: int,
    i0: float,
    production: dict[int, float],
    fx: dict[str, float],
    intensity: dict[int, float] | None = None,
) -> tuple[list[tuple[int, float]], set[int], int | None, int]:
    """Binding (year, intensity) milestones after ``base_year``, the years among them set by absolute
    targets, the net-zero year, and targets used.

    An absolute target is divided by the production projected for its year (``production``, by
    year; the last year's beyond it), as ITR divides its emissions path by the projected production:
    a company that grows must cut its intensity further to meet the same tonnage.
    With ``intensity`` (S1 targets standing in for S1S2's), a target is its reduction ambition
    applied to the scored scope's intensity in the target's base year (else the base year's).
    Of several targets for one year the most recently set one counts (latest start year; on a tie the
    intensity target, then the lowest value), as ITR orders them: a newer target supersedes an older one.
    """
    by_year: dict[int, float] = {}
    absolute: set[int] = set()
    used = 0
    records = [rec for rec in targets if int(rec["target_year"]) > base_year]
    latest: dict[int, tuple[float, bool]] = {}
    for rec in records:
        year = int(rec["target_year"])
        latest[year] = max(latest.get(year, _recency(rec)), _recency(rec))
    for rec in records:
        year = int(rec["target_year"])
        if _recency(rec) != latest[year]:
            continue
        if intensity is not None:
            ambition = rec.get("reduction_ambition")
            if ambition is None or pd.isna(ambition):
                continue
            ref = rec.get("base_year")
            ref_value = intensity.get(int(ref)) if ref is not None and not pd.isna(ref) else None
            value = (ref_value if ref_value is not None else i0) * (1.0 - float(ambition))
        elif rec["target_type"] == "intensity":
            factor = production_factor(denominator(str(rec["unit"])), bm_denominator, fx)
            if factor is None or factor == 0:
                continue
            value = float(rec["target_qty"]) / factor
        else:
            produced = production.get(year) or production[max(production)]
            value = float(rec["target_qty"]) / produced
        used += 1
        if value < by_year.get(year, math.inf):
            by_year[year] = value
            if intensity is None and rec["target_type"] == "absolute":
                absolute.add(year)
            else:
                absolute.discard(year)
    netzeros = [int(rec["netzero_year"]) for rec in targets if not pd.isna(rec["netzero_year"])]
    netzero = min(netzeros) if netzeros else None
    milestones = _binding_milestones(by_year, i0, base_year, netzero, absolute, production)
    return milestones, absolute & {y for y, _ in milestones}, netzero, used


def _recency(target: Mapping[str, Any]) -> tuple[float, bool]:
    """How ITR orders targets for one year: the latest start year first, then intensity over absolute."""
    start = target.get("start_year")
    return (
        -math.inf if start is None or pd.isna(start) else float(start),
        target["target_type"] == "intensity",
    )


def _binding_milestones(
    by_year: dict[int, float],
    start: float,
    base_year: int,
    netzero: int | None,
    absolute: set[int] | frozenset[int] = frozenset(),
    production: dict[int, float] | None = None,
) -> list[tuple[int, float]]:
    """Milestones from target values by year: only those below the path so far (a target at or above
    it is already met, not binding), then ``(netzero, 0)`` after the last one.

    An absolute target (its year in ``absolute``) binds when its tonnes are below the path's tonnes so
    far, as ITR 1.1.10 compares them: with production falling, a cut in tonnes can allow a higher
    intensity, and it still binds.
    """
    milestones: list[tuple[int, float]] = []
    level_year, level = base_year, start
    for year in sorted(by_year):
        value = by_year[year]
        if year in absolute and production and {year, level_year} <= production.keys():
            binds = value * production[year] < level * production[level_year]
        else:
            binds = value < level
        if binds:
            milestones.append((year, value))
            level_year, level = year, value
    if netzero is not None and netzero > base_year and (not milestones or netzero > milestones[-1][0]):
        milestones.append((netzero, 0.0))
    return milestones


def _project(
    i0: float,
    base_year: int,
    milestones: list[tuple[int, float]],
    rate: float | None,
    absolute: frozenset[int] | set[int] = frozenset(),
    production: dict[int, float] | None = None,
) -> dict[int, float]:
    """Intensity after ``base_year``: at ``rate`` a year (trajectory), else through ``milestones``.

    Toward a milestone set by an absolute target the path is shaped in emissions and divided by
    the year's production (ITR's ``EITargetProjector``), elsewhere in intensity.
    """
    path: dict[int, float] = {}
    if rate is not None:
        for t in range(base_year + 1, END_YEAR + 1):
            path[t] = i0 * (1.0 + rate) ** (t - base_year)
        return path
    points = [(base_year, i0), *milestones]
    for t in range(base_year + 1, END_YEAR + 1):
        if t >= points[-1][0]:
            path[t] = points[-1][1]
            continue
        for (y0, v0), (y1, v1) in itertools.pairwise(points):
            if y0 <= t <= y1:
                if y1 in absolute and production and {y0, y1, t} <= production.keys():
                    e0, e1 = v0 * production[y0], v1 * production[y1]
                    path[t] = _compound_step(e0, e1, t - y0, y1 - y0) / production[t]
                else:
                    path[t] = _compound_step(v0, v1, t - y0, y1 - y0)
                break
    return path


def _compound_step(first: float, last: float, step: int, period: int) -> float:
    """The value ``step`` years into a ``period``-year move from ``first`` to ``last``, shaped as ITR 1.1.10
    shapes target paths (``EITargetProjector._compute_CAGR``): a constant yearly rate; for a fall of more
    than 91 % (to zero, at net zero), whose constant rate would front-load the cut unrealistically, the
    rate of a 91 % fall less a linear share that lands exactly on the target. A target above the
    starting point keeps the path flat."""
    if last >= first or first == 0.0:
        return first
    if last < first * CAGR_LIMIT:
        return CAGR_LIMIT ** (step / period) * first - (CAGR_LIMIT * first - last) * step / period
    return (last / first) ** (step / period) * first


def inferred_netzero(targets: pd.DataFrame) -> dict[str, int | None]:
    """Net-zero year per scope as ITR 1.1.10 infers it (``calculate_nz_target_years``).

    A scope's own: the earliest ``netzero_year`` of its targets, or target year of a 100 % reduction.
    Then a compound scope's implies its parts' (S1S2S3 -> S1S2 and S3, S1S2 -> S1 and S2), and a
    compound scope reaches net zero when its last part does.
    """
    never = 9999
    nz: dict[str, int] = dict.fromkeys(("S1", "S2", "S1S2", "S3", "S1S2S3"), never)
    for scope, netzero, year, ambition in zip(
        targets["scope"], targets["netzero_year"], targets["target_year"], targets["reduction_ambition"],
        strict=True,
    ):  # fmt: skip
        if str(scope) not in nz:
            continue
        if not pd.isna(netzero):
            nz[str(scope)] = min(nz[str(scope)], int(netzero))
        if not pd.isna(ambition) and float(ambition) >= 1.0:
            nz[str(scope)] = min(nz[str(scope)], int(year))
    nz["S1S2"] = min(nz["S1S2"], nz["S1S2S3"])
    nz["S1"] = min(nz["S1S2"], nz["S1"])
    nz["S2"] = min(nz["S1S2"], nz["S2"])
    nz["S1S2"] = min(nz["S1S2"], max(nz["S1"], nz["S2"]))
    nz["S3"] = min(nz["S1S2S3"], nz["S3"])
    nz["S1S2S3"] = max(nz["S1S2"], nz["S3"])
    return {scope: (year if year < never else None) for scope, year in nz.items()}


def _absolute_first(targets: Sequence[Mapping[str, Any]], base_year: int) -> bool:
    """Whether the first of a scope's targets after ``base_year`` that ITR 1.1.10 follows is absolute: of
    those with the earliest target year, the most recently set (:func:`_recency`; ``project_ei_targets``)."""
    live = [rec for rec in targets if int(rec["target_year"]) > base_year]
    if not live:
        return False
    first = min(int(rec["target_year"]) for rec in live)
    _, intensity = max(_recency(rec) for rec in live if int(rec["target_year"]) == first)
    return not intensity


def _emissions_start(
    emissions: dict[int, float], production: dict[int, float], first: int
) -> tuple[int, float, dict[int, float]] | None:
    """Start year, start intensity and history of a target path led by an absolute target.

    An absolute target is about tonnes, so ITR 1.1.10 starts its path from the latest reported
    emissions, divided (as the whole path is) by the production projected for that year, not by the
    production reported: the cumulative target emissions then begin with what the company emitted.
    The reported years from :data:`ITR_BASE_YEAR` are divided the same way. None without emissions in
    the projection's years.
    """
    by_projection = {y: v / production[y] for y, v in emissions.items() if y in production and y < END_YEAR}
    if not by_projection:
        return None
    last = max(by_projection)
    return last, by_projection[last], _historic_path(by_projection, first, last)


@dataclass(frozen=True)
class TargetPath:
    """An entity's target path in one scope: intensity by year (history up to the base year included)."""

    unit: str
    path: dict[int, float]
    netzero: int | None
    used: int


def _company_targets(ctx: Context, company_id: str) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """A company's scope-total targets (no scope-3 category), and the same as records by scope.

    Split once per run: every entity of the company and every scope reads them, and filtering the
    frame again for each was a large part of the run's time.
    """

    def split() -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
        every = ctx.targets.get(company_id)
        if every is None or not len(every):
            return pd.DataFrame(columns=["scope", "target_year"]), {}
        totals = every[every["s3_category"].isna()]
        by_scope: dict[str, list[dict[str, Any]]] = {}
        for rec in totals.to_dict("records"):
            by_scope.setdefault(str(rec["scope"]), []).append(rec)
        return totals, by_scope

    return _memo(ctx, ("targets", company_id), split)


def score_entity(ctx: Context, entity: dict[str, Any], scope: str) -> dict[str, Any]:
    """One output row of company_temperature_scores (see the transforms docstring for columns)."""
    return _score(ctx, entity, scope)[0]


def _s1_and_benchmark_s2(
    ctx: Context,
    entity: dict[str, Any],
    s1: TargetPath,
    s1_targets: Sequence[Mapping[str, Any]],
    base_year: int,
    s2_intensity: dict[int, float],
    history: dict[int, float],
    unit: str,
) -> TargetPath | None:
    """S1S2's target path for an entity with S1 targets only, as ITR 1.1.10's ``project_ei_targets``:
    the S1 target path plus an S2 path that meets the benchmark's S2 intensity in each S1 target's year
    and reaches zero when the benchmark's S2 pathway is lowest; no path unless S1 has a net-zero year
    (ITR's S1S2 net zero is the later of S1's and S2's)."""
    pathway = pick_pathway(ctx, entity["sector"], entity["region"], entity["is_oecd"], "S2")
    if s1.netzero is None or s1.unit != unit or pathway is None:
        return None
    if str(pathway["unit"].iloc[0]) != unit:
        return None
    bm_s2 = dict(zip(pathway["year"].astype(int), pathway["intensity"].astype(float), strict=True))
    netzero_s2 = min(bm_s2, key=lambda y: (bm_s2[y], y))
    known = [y for y in s2_intensity if y <= base_year]
    start = s2_intensity[max(known)] if known else 0.0
    synthesized = {
        y: bm_s2[y] for y in (int(rec["target_year"]) for rec in s1_targets) if y > base_year and y in bm_s2
    }
    s2_path = _project(start, base_year, _binding_milestones(synthesized, start, base_year, netzero_s2), None)
    path = {**history, **{t: s1.path[t] + s2_path[t] for t in s2_path if t in s1.path}}
    return TargetPath(unit, path, max(s1.netzero, netzero_s2), s1.used)


def _summed_target(ctx: Context, entity: dict[str, Any], scope: str) -> TargetPath | None:
    """The target path of a compound scope without targets of its own: the sum of its parts' paths.

    ITR 1.1.10 (``project_ei_targets``) gives such a scope (S1S2, S1S2S3) the net-zero year its parts
    imply (the later of theirs) and, after its own last reported year, projects it as the sum of its
    parts' target paths (S1 + S2, S1S2 + S3) up to that year and zero after it: the S1 and S2 targets of a
    company without S1S2 targets shape its S1S2 path, and a part whose own path stops short of zero (a
    scope-3 cut by the net-zero year) does not keep the compound scope above zero. Without a path and a
    net-zero year for both parts there is none.
    """
    first, second = (_score(ctx, entity, part)[1] for part in SUMMED_PARTS[scope])
    if first is None or second is None or first.netzero is None or second.netzero is None:
        return None
    if first.unit != second.unit:
        return None
    netzero = max(first.netzero, second.netzero)
    return TargetPath(
        first.unit,
        {
            t: first.path[t] + second.path[t] if t <= netzero else 0.0
            for t in first.path.keys() & second.path.keys()
        },
        netzero,
        first.used + second.used,
    )


def _score(ctx: Context, entity: dict[str, Any], scope: str) -> tuple[dict[str, Any], TargetPath | None]:
    """The row of :func:`score_entity` and the entity's target path in the scope (None without one)."""
    return _memo(ctx, ("score", entity["company_id"], scope), lambda: _compute_score(ctx, entity, scope))


def _compute_score(
    ctx: Context, entity: dict[str, Any], scope: str
) -> tuple[dict[str, Any], TargetPath | None]:
    out: dict[str, Any] = {
        "company_id": entity["company_id"],
        "base_company_id": entity["base_company_id"],
        "company_name": entity["company_name"],
        "sector": entity["sector"],
        "region": entity["region"],
        "scope": scope,
        "benchmark_id": ctx.benchmark_id,
        "score_source": "default",
        "temperature_score_c": DEFAULT_SCORE_C,
    }

    def default(reason: str) -> tuple[dict[str, Any], None]:
        out["default_reason"] = reason
        return out, None

    if not entity["sector"]:
        return default("no sector")
    pathway = pick_pathway(ctx, entity["sector"], entity["region"], entity["is_oecd"], scope)
    bm_scope = scope
    if pathway is None and scope in SCOPE_FALLBACKS:
        # e.g. TPI's power pathway is S1 only: score S1 against it (flagged by benchmark_scope)
        bm_scope = SCOPE_FALLBACKS[scope]
        pathway = pick_pathway(ctx, entity["sector"], entity["region"], entity["is_oecd"], bm_scope)
    if pathway is None:
        return default(f"benchmark has no {scope} pathway for sector")
    out["benchmark_scope"] = bm_scope
    bm_unit = str(pathway["unit"].iloc[0])
    bm_den = denominator(bm_unit)
    out.update(
        {
            "benchmark_sector": pathway["sector"].iloc[0],
            "benchmark_region": pathway["region"].iloc[0],
            "benchmark_temperature_c": float(pathway["temperature_c"].iloc[0]),
            "global_budget_gt_co2": float(pathway["global_budget_gt_co2"].iloc[0]),
            "intensity_unit": bm_unit,
        }
    )
    bm = dict(zip(pathway["year"].astype(int), pathway["intensity"].astype(float), strict=True))

    em_all = ctx.emissions.get(entity["base_company_id"], {})
    # the entity's view of its company's figures, the same for every scope
    if entity["is_split"]:
        em_all = _memo(ctx, ("view", entity["company_id"]), lambda: split_view(ctx, entity, em_all))
    else:
        em_all = _memo(ctx, ("view", entity["company_id"]), lambda: own_sector_view(em_all, entity["sector"]))
    prod_all = ctx.production.get(entity["base_company_id"], pd.DataFrame(columns=["segment"]))
    levels = [entity["segment"]] if entity["is_split"] else [None]
    if not entity["is_split"]:
        key = ("own-sector production", entity["base_company_id"], entity["sector"])
        prod_all = _memo(ctx, key, lambda: own_sector_production(prod_all, entity["sector"]))
    emissions: dict[int, float] = {}
    prod: dict[int, float] = {}
    prod_unit = None
    used_level = None
    # default_reason: the failing check of the segment for a split, of the whole company otherwise
    reasons: list[str] = []
    basis: dict[int, tuple[float, str]] = {}
    for level in levels:
        where = "segment" if level is not None else "company"
        # a whole company's emissions are one view of its own-sector and company-level figures
        em_level = level if entity["is_split"] else None
        reported, p_series, p_unit = _level_production(ctx, entity["company_id"], prod_all, level, bm_den)
        from_intensity = {
            sc: _emissions_from_intensity(ctx, entity["base_company_id"], level, sc, bm_den, p_series)
            for sc in dict.fromkeys((bm_scope, "S1S2"))
        }
        e_basis = emissions_series(em_all, em_level, bm_scope, entity["sector"], from_intensity)
        e_series = {y: v for y, (v, _) in e_basis.items()}
        if e_series and not set(e_series) & set(p_series):
            # ITR: production derived as emissions / reported intensity when none is reported
            derived = _production_from_intensity(
                ctx, em_all, entity["base_company_id"], level, bm_scope, bm_den, em_level
            )
            if set(e_series) & set(derived):
                p_series, p_unit, reported = derived, "derived: emissions / reported intensity", True
        if not e_series:
            reasons.append(f"no {bm_scope} emissions ({where} level)")
        elif not reported:
            reasons.append(f"no production ({where} level)")
        elif not p_series:
            reasons.append(f"production not convertible to {bm_den} ({where} level)")
        elif not set(e_series) & set(p_series):
            reasons.append(f"no year with both {bm_scope} emissions and production ({where} level)")
        else:
            emissions, prod, prod_unit, used_level = e_series, p_series, p_unit, level
            basis = e_basis
            break
    if not emissions:
        if not em_all and prod_all.empty:
            return default("no reported emissions or production")
        return default(reasons[-1] if not entity["is_split"] else reasons[0])
    # the base year: the latest with both figures, as ITR's projection starts from the end of the drop's
    # years (a newer drop starts later), before the horizon's end so that a year is left to project
    intensity = {y: emissions[y] / prod[y] for y in set(emissions) & set(prod) if y < END_YEAR}
    if not intensity:
        return default(f"no year with both emissions and production before {END_YEAR}")
    base_year = max(intensity)
    i0, p0, e0 = intensity[base_year], prod[base_year], emissions[base_year]
    first = min(ITR_BASE_YEAR, base_year)
    horizon = [t for t in range(ITR_BASE_YEAR, END_YEAR + 1) if t in bm]
    growth = _production_growth(ctx, out["benchmark_sector"], out["benchmark_region"])
    # production projected with the benchmark's production pathway from the reported production of
    # 2019 as ITR does (its base_year_production), else of the base year. The scale cancels in every
    # overshoot ratio but sets how much intensity an absolute target (tonnes) allows.
    anchor_year = ITR_BASE_YEAR if ITR_BASE_YEAR in prod else base_year
    anchor, ga = prod[anchor_year], growth.get(anchor_year) or 1.0
    production = {t: anchor * (growth.get(t, ga) / ga if growth else 1.0) for t in horizon}
    budget = sum(production[t] * bm[t] for t in horizon)
    out.update(
        {
            "data_segment": used_level,
            "base_year": base_year,
            "base_year_emissions_t_co2e": e0,
            "emissions_basis": basis[base_year][1],
            "base_year_production": p0,
            "production_unit_reported": prod_unit,
            "base_year_intensity": i0,
            "benchmark_intensity_base_year": bm.get(base_year, bm[min(bm)]),
        }
    )
    totals, by_scope = _company_targets(ctx, entity["company_id"])
    targets = by_scope.get(bm_scope, [])
    targeted = set(by_scope)
    # S1S2 of a company with S1 targets only: ITR's S1 target path plus an S2 path along the benchmark
    s1_and_benchmark_s2 = (
        bm_scope == "S1S2" and not len(targets) and "S1" in targeted and "S2" not in targeted
    )
    s1_targets = by_scope["S1"] if s1_and_benchmark_s2 else []
    s1_row, s1_target = _score(ctx, entity, "S1") if s1_and_benchmark_s2 else ({}, None)
    milestones, absolute, netzero, used = ([], set(), None, 0)
    summed = None
    if bm_scope in SUMMED_PARTS and len(totals) and not len(targets) and not s1_and_benchmark_s2:
        summed = _summed_target(ctx, entity, bm_scope)
        summed = summed if summed is not None and summed.unit == bm_unit else None
    history = _historic_path(intensity, first, base_year)
    # where the target path starts: the reported intensity of the base year, or, when the first
    # target ITR 1.1.10 follows is absolute, the latest reported emissions over projected production
    start_year, start, target_history = base_year, i0, history
    if len(targets):
        led = _emissions_start(emissions, production, first) if _absolute_first(targets, base_year) else None
        if led is not None and led[0] >= base_year:
            start_year, start, target_history = led
        milestones, absolute, netzero, used = _target_milestones(
            targets, bm_den, start_year, start, production, ctx.fx_to_eur
        )
    elif s1_and_benchmark_s2 and pd.isna(s1_row.get("base_year")):
        # no S1 figures to project (ITR starts from the targets' own base quantities): the S1
        # targets' reduction ambition applied to S1S2's intensity in their base year
        milestones, absolute, netzero, used = _target_milestones(
            s1_targets, bm_den, base_year, i0, production, ctx.fx_to_eur, intensity
        )
    elif summed is None and len(totals) and bm_scope != "S1S2S3" and not s1_and_benchmark_s2:
        # ITR: a scope without targets still falls to zero by a net-zero year its neighbours imply
        # (an S1S2S3 net zero is one for S1S2 and S1); a compound scope sums its parts' paths instead
        implied = _memo(ctx, ("netzero", entity["company_id"]), lambda: inferred_netzero(totals)).get(
            bm_scope
        )
        if implied is not None and implied > base_year:
            milestones, netzero = [(implied, 0.0)], implied
    target: TargetPath | None = None
    # ITR: targets of the scope that are all met already still make a target path, holding the intensity
    # it starts from (the company committed to stay at most at its targets)
    if milestones or (len(targets) and used):
        projected = _project(start, start_year, milestones, None, absolute, production)
        target = TargetPath(bm_unit, {**target_history, **projected}, netzero, used)
    elif s1_and_benchmark_s2 and s1_target is not None:
        s2_level = used_level if entity["is_split"] else None
        s2 = {y: v / prod[y] for y, (v, _) in emissions_series(em_all, s2_level, "S2").items() if y in prod}
        target = _s1_and_benchmark_s2(ctx, entity, s1_target, s1_targets, base_year, s2, history, bm_unit)
    elif summed is not None:
        after = {t: v for t, v in summed.path.items() if t > base_year}
        target = TargetPath(bm_unit, {**history, **after}, summed.netzero, summed.used)
    if not horizon or budget <= 0:
        # the target path still serves S1S2S3's (a scope-3 pathway of power has no budget)
        return default("benchmark budget is zero over the projection horizon")[0], target
    afolu = pathway["is_afolu_included"].iloc[0] if "is_afolu_included" in pathway else None
    excludes_afolu = afolu is not None and not pd.isna(afolu) and not bool(afolu)
    budget_gt = out["global_budget_gt_co2"] / (NON_AFOLU_SHARE if excludes_afolu else 1.0)
    out["global_budget_gt_co2"] = budget_gt
    rate = _trend_rate(intensity, base_year)
    trajectory = {**history, **_project(i0, base_year, [], rate)}
    cum_traj = sum(production[t] * trajectory[t] for t in horizon)
    traj_ratio = cum_traj / budget
    traj_score = itr_score(out["benchmark_temperature_c"], budget_gt, traj_ratio)
    target_ratio = target_score = cum_target = None
    path = trajectory
    if target is not None:
        target_path = target.path
        cum_target = sum(production[t] * target_path[t] for t in horizon)
        target_ratio = cum_target / budget
        target_score = itr_score(out["benchmark_temperature_c"], budget_gt, target_ratio)
        path = target_path
    if target_score is None:
        raw, source, result_type = traj_score, "trend", "TRAJECTORY_ONLY"
    elif traj_ratio > RUNAWAY_OVERSHOOT:
        raw, source, result_type = target_score, "target", "TARGET_ONLY"
    else:
        raw = TARGET_PROBABILITY * target_score + (1.0 - TARGET_PROBABILITY) * traj_score
        source, result_type = "target", "COMPLETE"
    if raw > QUARANTINE_SCORE_C:
        out["temperature_score_uncapped_c"] = raw
        return default(
            f"implausible score {raw:.3g} C quarantined (data break above {QUARANTINE_SCORE_C:g} C)"
        )
    temperature = min(raw, MAX_SCORE_C)
    out.update(
        {
            "trend_annual_rate": rate,
            "n_targets_used": target.used if target is not None else 0,
            "netzero_year": target.netzero if target is not None else None,
            "projected_intensity_2030": path.get(2030),
            "projected_intensity_2050": path.get(END_YEAR),
            "cumulative_emissions_t_co2e": cum_target if cum_target is not None else cum_traj,
            "cumulative_trajectory_t_co2e": cum_traj,
            "cumulative_budget_t_co2e": budget,
            "overshoot_ratio": target_ratio if target_ratio is not None else traj_ratio,
            "trajectory_overshoot_ratio": traj_ratio,
            "trajectory_score_c": traj_score,
            "target_score_c": target_score,
            "score_result_type": result_type,
            "temperature_score_uncapped_c": raw,
            "score_capped": raw > MAX_SCORE_C,
            "temperature_score_c": temperature,
            "score_source": source,
            "default_reason": None,
        }
    )
    return out, target
