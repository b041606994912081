"""Attribute the portfolio figures' gap: ITR 1.1.10's aggregation, reproduced, over the mesh's company scores.

The mesh's portfolio figures differ from ITR's for two kinds of reasons: the company scores under them
(measured by ``deliberate.py``) and how holdings become a figure. The second kind are deliberate
differences of the portfolio side (the method doc lists them), reproduced here as ITR's rules:

* ``holdings ITR drops``: ITR leaves out the holdings whose company its loader cannot read (no
  company data, or too little to project); the mesh scores every holding or counts it at the default
  3.2 °C as uncovered. ITR's own verdict is used (its ``holdings`` list): its loader is the rule.
* ``holdings without figures for the scope``: ITR has no row for a scope its data does not cover, so the
  holding is out of that scope's figures; the mesh counts it at the default (``no ... emissions``).
* ``uncapped scores``: ITR averages its scores as they are; the mesh caps at 4.4 °C and quarantines
  scores above 20 °C as a data break.
* ``placeholder denominators``: a market cap (EV, EVIC) of 1 is read by the companies domain as a
  placeholder, missing; ITR divides by it, so one holding can carry the whole of MOTS (PETRONAS_SOE).
* ``defaults in emissions weights``: ITR's TETS and ownership methods weigh default-scored holdings too
  (at 3.2 °C); the mesh's average the data-based ones.
* ``company emissions of 2019 as weights``: ITR weighs S1 and S1S2 by the company's S1S2 emissions, S3
  by its S3 and S1S2S3 by both (``ghg_s1s2``, ``ghg_s3``), of its base year 2019 (``BASE_YEAR``); the
  mesh by the scored scope's emissions of the score's base year (the latest reported). Reproduced by
  reading the 2019 figure of the emissions series each score is built from (:func:`weights_2019`).

:func:`itr_figure` is ITR's aggregation (``PortfolioAggregation._calculate_aggregate_score``) in plain
Python; on ITR's own company rows it gives ITR's 28 figures (asserted by ``tests/oracle``). Prints the
figures side by side for: the mesh as published; ITR's rules over the mesh's scores; the same with the
company-level differences reproduced; and, to isolate what is left, with ITR's score for each company
whose score still differs, then with ITR's row wherever the rows differ in more than the score
(:func:`with_itr_rows`):

    .venv/bin/python tools/itr_oracle/portfolio.py [--raw data/raw]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import compare
import deliberate
import oracle

RULES = (
    "holdings ITR drops",
    "holdings without figures for the scope",
    "uncapped scores",
    "placeholder denominators",
    "defaults in emissions weights",
    "company emissions of 2019 as weights",
)
# ITR's denominator per ownership method (``get_value_column``) and the mesh's company_master column
DENOMINATORS = {
    "MOTS": ("company_market_cap", "market_cap_eur"),
    "EOTS": ("company_enterprise_value", "ev_eur"),
    "ECOTS": ("company_ev_plus_cash", "evic_eur"),
    "AOTS": ("company_total_assets", "assets_eur"),
    "ROTS": ("company_revenue", "revenue_eur"),
}
# the raw fundamentals column of each mesh column (placeholders are read back from it)
RAW_COLUMNS = {"market_cap_eur": "market_cap", "ev_eur": "ev", "evic_eur": "evic"}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def itr_figure(rows: Iterable[Mapping[str, Any]], scope: str, method: str) -> float:
    """ITR 1.1.10's portfolio figure of ``rows`` (one per holding and scope, in ITR's ``companies`` shape:
    ``temperature_score``, ``investment_value``, ``ghg_s1s2``, ``ghg_s3``, ``company_*`` values).

    S3 rows without S3 emissions are left out (``_get_score_aggregation``); missing emissions or
    denominators weigh nothing (ITR fills them with 0 before summing).
    """
    rows = [r for r in rows if r["scope"] == scope]
    if scope == "S3":
        rows = [r for r in rows if not _missing(r["ghg_s3"])]
    s1s2, s3 = scope in ("S1", "S2", "S1S2", "S1S2S3"), scope in ("S3", "S1S2S3")

    def emissions(r: Mapping[str, Any]) -> float:
        return (r["ghg_s1s2"] if s1s2 and not _missing(r["ghg_s1s2"]) else 0.0) + (
            r["ghg_s3"] if s3 and not _missing(r["ghg_s3"]) else 0.0
        )

    if method == "WATS":
        weights = [float(r["investment_value"]) for r in rows]
    elif method == "TETS":
        weights = [emissions(r) for r in rows]
    else:
        column = DENOMINATORS[method][0]
        weights = [
            0.0 if _missing(r[column]) else float(r["investment_value"]) / r[column] * emissions(r)
            for r in rows
        ]
    total = sum(weights)
    return sum(w / total * float(r["temperature_score"]) for w, r in zip(weights, rows, strict=True))


def mesh_rows(
    products: dict[str, pd.DataFrame],
    scores: pd.DataFrame,
    itr: dict[str, Any],
    raw: Path,
    rules: Iterable[str] = RULES,
    weights: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """The mesh's holdings in ITR's row shape, one per holding and scope, with ITR's ``rules`` applied
    (a rule left out keeps the mesh's behaviour where it can be expressed in ITR's formula).

    ``weights``: the scores whose base-year emissions are ITR's weights (:func:`weights_2019`); without
    it, the base-year emissions of ``scores``."""
    from domains.portfolio_alignment import transforms

    rules = set(rules)
    unknown = rules - set(RULES)
    if unknown:
        raise ValueError(f"unknown rules {sorted(unknown)}; known: {', '.join(RULES)}")
    master = products["company_master"].drop_duplicates("company_id").set_index("company_id")
    if "placeholder denominators" in rules:
        master = _with_placeholders(master, raw / "itr-sample" / "fundamentals.csv")
    dropped = {h["company_id"] for h in itr["holdings"] if not h["scored_by_itr"]}
    holdings = products["holdings"]
    if "holdings ITR drops" in rules:
        holdings = holdings[~holdings["company_id"].isin(dropped)]
    by_entity = scores.drop_duplicates(["company_id", "scope"]).set_index(["company_id", "scope"])
    weighed = (
        by_entity
        if weights is None
        else weights.drop_duplicates(["company_id", "scope"]).set_index(["company_id", "scope"])
    )
    rows = []
    for scope in compare.SCOPES:
        picked = transforms.holding_scores(holdings, scores[scores["scope"] == scope], master)
        for h in picked.to_dict("records"):
            entity = h["scored_company_id"]
            entity = entity if isinstance(entity, str) else None
            score = by_entity.loc[(entity, scope)] if entity is not None else None
            default = score is None or score["score_source"] == "default"
            reason = (
                "" if score is None or _missing(score["default_reason"]) else str(score["default_reason"])
            )
            if "holdings without figures for the scope" in rules and default and reason.startswith("no "):
                continue
            if (default and "implausible" not in reason) or "uncapped scores" not in rules:
                value = h["temperature_score_c"]
            else:
                value = float(score["temperature_score_uncapped_c"])
            row = {
                "company_id": h["company_id"],
                "scope": scope,
                "temperature_score": value,
                "investment_value": float(h["investment_value_eur"]),
                **{itr_col: h[col] for itr_col, col in DENOMINATORS.values()},
            }
            if "company emissions of 2019 as weights" in rules:
                row["ghg_s1s2"] = _emissions(weighed, entity, "S1S2")
                row["ghg_s3"] = _emissions(weighed, entity, "S3")
            else:  # the scored scope's base-year emissions, in whichever of ITR's columns the scope reads
                own = _emissions(by_entity, entity, scope)
                own = 0.0 if math.isnan(own) else own  # weightless, but still in WATS
                row["ghg_s1s2"], row["ghg_s3"] = (0.0, own) if scope == "S3" else (own, 0.0)
            if default and "defaults in emissions weights" not in rules:
                row["ghg_s1s2"], row["ghg_s3"] = 0.0, 0.0  # in WATS, weightless elsewhere
            rows.append(row)
    return rows


def _emissions(by_entity: pd.DataFrame, entity: str | None, scope: str) -> float:
    if entity is None or (entity, scope) not in by_entity.index:
        return math.nan
    value = by_entity.loc[(entity, scope), "base_year_emissions_t_co2e"]
    return math.nan if pd.isna(value) else float(value)


def weights_2019(raw: Path, workdir: Path) -> pd.DataFrame:
    """Each entity's S1S2 and S3 emissions of 2019, ITR's base year (its ``ghg_s1s2`` and ``ghg_s3``), as
    the mesh builds them (reported, else from reported intensity, else the sum of the parts; the
    company-level differences reproduced), in the shape of company scores: ``company_id``, ``scope``,
    ``base_year_emissions_t_co2e`` (NaN without a 2019 figure). Captured from a scoring run: the emissions
    series each entity's score is built from."""
    from domains.portfolio_alignment import scoring

    compute, series_of = scoring._compute_score, scoring.emissions_series
    scoring_now: list[tuple[str, str]] = []
    captured: dict[tuple[str, str], float] = {}

    def capture_compute(ctx: Any, entity: dict[str, Any], scope: str) -> Any:
        scoring_now.append((entity["company_id"], scope))
        try:
            return compute(ctx, entity, scope)
        finally:
            scoring_now.pop()

    def capture_series(em_all: Any, level: Any, scope: str, *args: Any, **kwargs: Any) -> Any:
        out = series_of(em_all, level, scope, *args, **kwargs)
        if scoring_now and scoring_now[-1][1] == scope and args:  # the scored scope's own series
            value = out.get(scoring.ITR_BASE_YEAR)
            captured.setdefault(scoring_now[-1], math.nan if value is None else float(value[0]))
        return out

    scoring._compute_score, scoring.emissions_series = capture_compute, capture_series
    try:
        deliberate.scores_with(raw, deliberate.DIFFERENCES, workdir / "weights")
    finally:
        scoring._compute_score, scoring.emissions_series = compute, series_of
    return pd.DataFrame(
        [{"company_id": c, "scope": sc, "base_year_emissions_t_co2e": v} for (c, sc), v in captured.items()],
        columns=["company_id", "scope", "base_year_emissions_t_co2e"],
    )


def _with_placeholders(master: pd.DataFrame, fundamentals: Path) -> pd.DataFrame:
    """``master`` with each denominator the companies domain read as a placeholder set back to the file's
    value (in EUR), as ITR uses it."""
    raw = pd.read_csv(fundamentals).drop_duplicates("company_id").set_index("company_id")
    out = master.copy()
    for column, raw_column in RAW_COLUMNS.items():
        flag = raw_column + "_placeholder"
        flagged = out["quality_flags"].astype("string").str.contains(flag, regex=False, na=False)
        for cid in out.index[flagged]:
            if cid in raw.index and not pd.isna(raw.at[cid, raw_column]):
                scale = out.at[cid, "money_unit_scale"]
                scale = 1.0 if pd.isna(scale) else float(scale)
                out.at[cid, column] = (
                    float(raw.at[cid, raw_column]) * scale * float(out.at[cid, "fx_rate_to_eur"])
                )
    return out


def figures(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """ITR's 28 figures (scope, method) of ``rows``."""
    return {(s, m): itr_figure(rows, s, m) for s in compare.SCOPES for m in compare.METHODS}


def itr_figures(itr: dict[str, Any]) -> dict[tuple[str, str], float]:
    """ITR's published figures, by (scope, method)."""
    return {(p["scope"], p["aggregation"]): float(p["temperature_score_c"]) for p in itr["portfolio"]}


def with_itr_scores(rows: list[dict[str, Any]], itr: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """``rows`` with ITR's score wherever the mesh's company score (uncapped) differs from ITR's by more
    than the tolerance; and how many rows were replaced."""
    theirs = {(c["company_id"], c["scope"]): c for c in itr["companies"]}
    out, replaced = [], 0
    for row in rows:
        other = theirs.get((row["company_id"], row["scope"]))
        if other is not None and abs(float(row["temperature_score"]) - float(other["temperature_score"])) > (
            compare.TOLERANCE_C
        ):
            row = {**row, "temperature_score": float(other["temperature_score"])}
            replaced += 1
        out.append(row)
    return out, replaced


WEIGHT_COLUMNS = ("investment_value", "ghg_s1s2", "ghg_s3", *(itr for itr, _ in DENOMINATORS.values()))


def with_itr_rows(
    rows: list[dict[str, Any]], itr: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]]]:
    """``rows`` with ITR's own row wherever the two differ in more than the score: a (holding, scope) only
    one of them has, or one whose weights (value, emissions, denominators) differ. What it replaced, by
    kind: ``only ITR``, ``only mesh``, ``weights``. If every figure then matches, the portfolio gap is
    fully explained by the company scores and by these rows."""
    theirs = {(c["company_id"], c["scope"]): c for c in itr["companies"]}
    mine = {(r["company_id"], r["scope"]): r for r in rows}

    def differs(a: Any, b: Any) -> bool:
        if _missing(a) or _missing(b):
            return _missing(a) != _missing(b)
        return abs(float(a) - float(b)) > 1e-6 * max(abs(float(b)), 1.0)

    replaced = {
        "only ITR": sorted(set(theirs) - set(mine)),
        "only mesh": sorted(set(mine) - set(theirs)),
        "weights": sorted(
            k
            for k in set(mine) & set(theirs)
            if any(differs(mine[k][c], theirs[k][c]) for c in WEIGHT_COLUMNS)
        ),
    }
    swap = {k for keys in replaced.values() for k in keys}
    out = [r for k, r in mine.items() if k not in swap] + [theirs[k] for k in swap if k in theirs]
    return out, replaced


def summary(mine: Mapping[tuple[str, str], float], theirs: Mapping[tuple[str, str], float]) -> str:
    diffs = sorted(abs(mine[k] - theirs[k]) for k in theirs)
    worst = max(theirs, key=lambda k: abs(mine[k] - theirs[k]))
    return (
        f"{sum(d <= compare.TOLERANCE_C for d in diffs)} of {len(diffs)} within 0.01 °C, "
        f"{sum(d <= 0.1 for d in diffs)} within 0.1 °C, median {diffs[len(diffs) // 2]:.3f}, "
        f"largest {diffs[-1]:.3f} ({' '.join(worst)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=compare.REPO / "data" / "raw")
    args = parser.parse_args(argv)
    itr = oracle.itr_results(args.raw / "itr-sample", args.raw / "itr-benchmarks", compare.subprocess_env())
    theirs = itr_figures(itr)
    products = compare.mesh_products(args.raw)
    published = compare.portfolio_side_by_side(products["portfolio"], itr)
    mesh = {(r.scope, r.method): r.mesh_c for r in published.itertuples()}
    print(f"ITR's formula on ITR's rows:    {summary(figures(itr['companies']), theirs)}")
    print(f"the mesh as published:          {summary(mesh, theirs)}")
    plain = figures(mesh_rows(products, products["scores"], itr, args.raw))
    print(f"ITR's rules, the mesh's scores: {summary(plain, theirs)}")
    with tempfile.TemporaryDirectory() as tmp:
        scores = deliberate.scores_with(args.raw, deliberate.DIFFERENCES, Path(tmp))
        weights = weights_2019(args.raw, Path(tmp))
    print(
        f"+ company differences:          {summary(figures(mesh_rows(products, scores, itr, args.raw)), theirs)}"
    )
    rows = mesh_rows(products, scores, itr, args.raw, weights=weights)
    print(f"+ 2019 emissions as weights:    {summary(figures(rows), theirs)}")
    swapped, n = with_itr_scores(rows, itr)
    print(f"+ ITR's score for {n} rows:      {summary(figures(swapped), theirs)}")
    whole, replaced = with_itr_rows(swapped, itr)
    counts = ", ".join(f"{len(v)} {k}" for k, v in replaced.items())
    print(f"+ ITR's row where they differ ({counts}): {summary(figures(whole), theirs)}")
    for kind, keys in replaced.items():
        print(f"  {kind}: {', '.join(f'{c} {s}' for c, s in keys)}")
    for rule in RULES:
        left = figures(mesh_rows(products, scores, itr, args.raw, [r for r in RULES if r != rule], weights))
        print(f"  without '{rule}': {summary(left, theirs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
