"""The mesh's temperature scores against the OS-Climate ITR tool (itr 1.1.10) on the same sample drop.

Issue #15: "The ITR tool as an oracle in the test suite ... compare company scores and portfolio
figures with the mesh's. Target: every company score and every portfolio figure within 0.01 °C of the
tool's, except the cases where the mesh deliberately differs."

The oracle runs in its own venv (``deploy/local/itr_oracle.sh``, built on first use and cached per
user with its results). Under ``CI=true`` it is built and run, never skipped. Full parity is not
reached yet: the assertions are floors/ceilings at the figures measured when the method was last
changed, so any regression fails, and the method doc lists what still differs and why.
"""

from __future__ import annotations

import math
import os
import shutil
import sys

import pandas as pd
import pytest

from mesh_assets.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools" / "itr_oracle"))
import compare
import deliberate
import oracle
import portfolio

RAW = REPO_ROOT / "data" / "raw"

# scope -> (min companies compared, min within 0.01 C, max median diff C, max p90 diff C), measured
# 2026-11-30 on the sample (see docs/portfolio-alignment-method.md, "Result on the sample"), after ITR's
# trend rule (winsorized history, every change), target shapes (compound rates; absolute targets in
# emissions over the projected production), production anchor (2019), ITR's data selection (own-sector
# figures first, the sector's scope-3 category, S2 as zero only without S2 or S1S2) and its target
# inference (net-zero years implied between scopes, S1S2S3 as the sum of S1S2 and S3) and allocation of
# company emissions to sector splits were adopted; measured again 2026-12-01 after paths led by an absolute
# target start from the reported tonnes and such targets bind in tonnes, and S1S2 without targets of its own
# follows the sum of its S1 and S2 target paths, and of targets for one year the newest counts,
# and a summed target path is zero after its net-zero year, and a reported intensity x production counts as
# the scope's emissions, and targets all met already hold the intensity flat.
COMPANY_FLOORS = {
    "S1": (101, 55, 0.009, 0.25),
    "S1S2": (107, 60, 0.009, 0.16),
    "S3": (54, 38, 0.002, 0.16),
    "S1S2S3": (77, 35, 0.014, 0.47),
}


@pytest.fixture(scope="module")
def itr() -> dict:
    in_ci = os.environ.get("CI", "").lower() == "true"
    python = os.environ.get("MESH_ITR_PYTHON", "python3.11")
    if shutil.which(python) is None and not in_ci:
        pytest.skip(f"no {python} to build the ITR oracle venv (under CI=true this fails instead)")
    try:
        return oracle.itr_results(RAW / "itr-sample", RAW / "itr-benchmarks", compare.subprocess_env())
    except oracle.OracleUnavailableError as exc:
        if in_ci:
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def products() -> dict:
    return compare.mesh_products(RAW)


def test_the_oracle_scored_the_sample(itr: dict) -> None:
    assert itr["tool"] == "itr" and itr["benchmark_id"] == "OECM_1_5C"
    scopes = {(p["aggregation"], p["scope"]) for p in itr["portfolio"]}
    assert scopes == {(m, s) for m in compare.METHODS for s in compare.SCOPES}
    assert all(math.isfinite(p["temperature_score_c"]) for p in itr["portfolio"])


@pytest.mark.parametrize("scope", compare.SCOPES)
def test_company_scores_against_itr(products: dict, itr: dict, scope: str) -> None:
    result = compare.compare_companies(products["scores"], itr, scope)
    n_min, within_min, median_max, p90_max = COMPANY_FLOORS[scope]
    print(result)
    assert result.n_compared >= n_min, result
    assert result.n_within_tolerance >= within_min, result
    assert result.median_diff_c <= median_max, result
    assert result.p90_diff_c <= p90_max, result


def test_every_holding_is_accounted_for_where_itr_drops_some(products: dict, itr: dict) -> None:
    """ITR silently drops holdings it has no company data for; the mesh counts them as uncovered."""
    figures = products["portfolio"]
    n_holdings = len(products["holdings"])
    assert (figures["n_holdings"] == n_holdings).all()
    dropped_by_itr = sum(not h["scored_by_itr"] for h in itr["holdings"])
    assert dropped_by_itr > 0
    wats = figures[(figures["scope"] == "S1S2") & (figures["method"] == "WATS")].iloc[0]
    assert wats["n_holdings_data_based"] + wats["n_holdings_default"] == n_holdings
    assert 0 < wats["n_holdings_no_company_data"] <= dropped_by_itr
    assert wats["coverage_value_share"] < 1.0


def test_portfolio_figures_side_by_side(products: dict, itr: dict) -> None:
    side = compare.portfolio_side_by_side(products["portfolio"], itr)
    print(side.to_string())
    # every ITR figure has a mesh counterpart (all seven aggregations, all four scopes)
    assert side["mesh_c"].notna().all() and side["itr_c"].notna().all()
    # measured 2026-12-01: 9 of 28 figures within 0.1 C, median 0.12 C, the largest 1.30 C (S1S2 ECOTS:
    # ITR divides by PETRONAS_SOE's placeholder market cap, EV and EVIC of 1, so it owns all of ITR's S1S2
    # MOTS, EOTS and ECOTS). The deliberate differences behind the gap are reproduced below.
    assert (side["diff_c"] <= 0.1).sum() >= 8, side
    assert side["diff_c"].median() <= 0.14, side
    assert side["diff_c"].max() <= 1.35, side


def test_the_method_doc_shows_this_run(products: dict, itr: dict) -> None:
    """The doc's sample result is generated (tools/itr_oracle/sample_result.py), never hand-typed."""
    import sample_result

    doc = sample_result.DOC.read_text()
    expected = sample_result.with_section(doc, compare.report_markdown(products, itr))
    assert doc == expected, (
        "docs/portfolio-alignment-method.md is stale: run tools/itr_oracle/sample_result.py"
    )


# measured 2026-12-01 by tools/itr_oracle/deliberate.py: companies within 0.01 C (S1, S1S2, S3, S1S2S3) with
# the listed deliberate differences reproduced (the mesh: 55, 60, 38, 35). One at a time (the tool prints
# them; the method doc gives them): trajectory start 82, 82, 46, 54; means of several figures (with ITR's
# scope-3 choice) 62, 71, 44, 43; S1-only targets 55, 62, 38, 36.
REPRODUCED_FLOORS = (98, 100, 54, 70)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Company scores with every listed company-level deliberate difference reproduced (ITR's behaviour)."""
    return deliberate.scores_with(RAW, deliberate.DIFFERENCES, tmp_path_factory.mktemp("deliberate"))


# Company scores that differ from ITR's by more than 0.01 C with the reproducible differences reproduced,
# each attributed in the method doc ("What the listed differences explain"): measured 2026-12-01.
EXPLAINED: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        [
            ("US26441C2044+Electricity Utilities", "S1"),
            ("US2091151041+Electricity Utilities", "S1"),
            ("US2091151041+Electricity Utilities", "S1S2"),
            ("US2091151041+Electricity Utilities", "S1S2S3"),
            ("DE0005220008+Electricity Utilities", "S1S2"),
            ("CA3495531079+Gas Utilities", "S1S2"),
            ("US0921131092+Electricity Utilities", "S1S2S3"),
        ],
        "sector splits",
    ),
    ("US6708371033", "S1S2S3"): "S1S2S3 of an entity reporting S1 only",
    ("US30034W1062", "S1S2"): "targets of another scope",
    **dict.fromkeys([("US1258961002", s) for s in ("S1", "S1S2", "S1S2S3")], "rows ITR reads differently"),
    **dict.fromkeys([("US8581191009", s) for s in ("S1S2", "S1S2S3")], "s1s2 and s1+s2 as two metrics"),
    **dict.fromkeys([("US69351T1060", s) for s in ("S1S2", "S1S2S3")], "S2 as the mean of its parts"),
    **dict.fromkeys([("FR0010313833", s) for s in ("S3", "S1S2S3")], "a year without S3 filled"),
}


def test_the_deliberate_differences_explain_the_whole_gap(itr: dict, reproduced: pd.DataFrame) -> None:
    """The issue's target: every company score within 0.01 C of ITR's except the listed deliberate
    differences. With the reproducible ones reproduced, a score that still differs must be one the method
    doc attributes (EXPLAINED); a new difference, or a lost match, fails. A score only one tool gives is a
    sector split (or its company as a whole, which ITR replaces by its splits) or a company ITR has no
    row for at all (its loader drops it, or it is not held: ITR scores the portfolio's companies only)."""
    results = [compare.compare_companies(reproduced, itr, scope) for scope in compare.SCOPES]
    for result, floor in zip(results, REPRODUCED_FLOORS, strict=True):
        assert result.n_within_tolerance >= floor, result
        assert result.n_within_tolerance > COMPANY_FLOORS[result.scope][1], result
    theirs = {
        (c["company_id"], c["scope"]): float(c["temperature_score"])
        for c in itr["companies"]
        if c.get("score_result_type") != "DEFAULT" and c.get("temperature_score") is not None
    }
    scored = reproduced[reproduced["score_source"] != "default"]
    keys = zip(scored["company_id"], scored["scope"], strict=True)
    mine = dict(zip(keys, scored["temperature_score_uncapped_c"], strict=True))
    off = {k for k in set(mine) & set(theirs) if abs(float(mine[k]) - theirs[k]) > compare.TOLERANCE_C}
    assert off <= set(EXPLAINED), sorted(off - set(EXPLAINED))
    itr_companies = {c["company_id"] for c in itr["companies"]}
    for company_id, scope in set(mine) ^ set(theirs):
        split = "+" in company_id or any(other.startswith(company_id + "+") for other in itr_companies)
        assert split or company_id not in itr_companies, (company_id, scope)


def test_itr_portfolio_aggregation_is_reproduced_exactly(itr: dict) -> None:
    """``tools/itr_oracle/portfolio.py`` computes ITR's 28 figures from ITR's own company rows: the formula
    the portfolio attribution applies to the mesh's scores is ITR's."""
    mine, theirs = portfolio.figures(itr["companies"]), portfolio.itr_figures(itr)
    assert set(theirs) == set(mine)
    for key, value in theirs.items():
        assert mine[key] == pytest.approx(value, abs=1e-9), key


def test_the_portfolio_differences_explain_the_portfolio_gap(
    products: dict, itr: dict, reproduced: pd.DataFrame, tmp_path
) -> None:
    """ITR's portfolio rules (the method doc's portfolio-side deliberate differences: holdings it drops,
    uncapped scores, placeholder denominators, defaults and 2019 company emissions as weights) over the
    mesh's company scores with the company-level differences reproduced. Measured 2026-12-01: 17 of 28
    figures within 0.01 C and all 28 within 0.1 C, the largest 0.084 C (the mesh as published: 2 and 9,
    1.30 C). What is left is explained: with ITR's score for the company rows that still differ (each
    attributed in the method doc) and ITR's row for the 65 holding rows that differ in more than the score
    (sector splits, 2019 emissions ITR fills from later years, US8581191009's S1S2 and RWE's 0.07 %),
    every figure is within 0.01 C."""
    weights = portfolio.weights_2019(RAW, tmp_path)
    rows = portfolio.mesh_rows(products, reproduced, itr, RAW, weights=weights)
    theirs = portfolio.itr_figures(itr)
    diffs = sorted(abs(portfolio.figures(rows)[k] - theirs[k]) for k in theirs)
    print(portfolio.summary(portfolio.figures(rows), theirs))
    assert sum(d <= compare.TOLERANCE_C for d in diffs) >= 17, diffs
    assert sum(d <= 0.1 for d in diffs) == len(diffs), diffs
    assert diffs[-1] <= 0.09, diffs
    swapped, n_scores = portfolio.with_itr_scores(rows, itr)
    assert 0 < n_scores <= 18
    assert max(abs(portfolio.figures(swapped)[k] - theirs[k]) for k in theirs) <= 0.04
    whole, replaced = portfolio.with_itr_rows(swapped, itr)
    print({kind: len(keys) for kind, keys in replaced.items()})
    assert sum(len(keys) for keys in replaced.values()) <= 65, replaced
    assert max(abs(portfolio.figures(whole)[k] - theirs[k]) for k in theirs) <= compare.TOLERANCE_C
