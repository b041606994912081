"""Portfolio alignment: holdings, company temperature scores and the portfolio score."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from domain_inputs import BENCHMARK_ID, read_sample

from domains.portfolio_alignment import scoring
from domains.portfolio_alignment import transforms as portfolio
from mesh_assets.ingest.cleaning import Cleaned


def _score(scores: Cleaned, company_id: str) -> pd.Series:
    return scores.data.set_index("company_id").loc[company_id]


def test_holdings(portfolio_holdings: Cleaned) -> None:
    df = portfolio_holdings.data.set_index("company_id")
    assert len(df) == 133 and portfolio_holdings.rejected_rows == 0
    assert df["investment_value_eur"].sum() == 9_146_881_319  # README: the portfolio total
    assert df["sector_split"].notna().sum() == 21
    # portfolio.csv line 11: Black Hills Corp. (Elec), company_isin "US0921131092-E"
    bh = df.loc["US0921131092+Electricity Utilities"]
    assert (bh["base_company_id"], bh["sector_split"]) == ("US0921131092", "Electricity Utilities")
    assert bh["isin"] == "US0921131092" and bh["isin_reported"] == "US0921131092-E"
    # portfolio.csv line 132: Azbil Corporation, company_lei "0"
    azbil = df.loc["JP3937200008"]
    assert pd.isna(azbil["lei"]) and "lei_placeholder" in azbil["quality_flags"]
    assert pd.isna(df.loc["9503.T", "isin"])  # Kansai Electric Power: a ticker


def test_holdings_reject_unusable_rows() -> None:
    raw = read_sample("portfolio.csv").head(3).copy()
    raw.loc[raw.index[0], "investment_value [EUR]"] = -5
    raw.loc[raw.index[1], "company_id"] = None
    cleaned = portfolio.portfolio_holdings(raw)
    assert cleaned.rejected == {
        "missing, non-numeric or negative investment value": 1,
        "missing company_id": 1,
    }
    assert len(cleaned.data) == 1


def test_every_company_and_split_is_scored(company_scores: Cleaned, portfolio_holdings: Cleaned) -> None:
    df = company_scores.data
    assert df["company_id"].is_unique
    assert len(df) == 119 + 21  # company_master rows + ISIN+Sector splits
    holdings = set(portfolio_holdings.data["company_id"])
    missing_from_master = {"JP3942400007", "GB0009895292", "GB00BZ09BD16", "JP3937200008", "DE000BAY0017",
                           "JP3209000003"}  # fmt: skip
    assert holdings - set(df["company_id"]) == missing_from_master
    # companies without data keep a flagged default score, they are not dropped
    crh = _score(company_scores, "IE0001827041")  # CRH Plc: emissions but no production in the sample
    assert (crh["temperature_score_c"], crh["score_source"]) == (3.2, "default")
    assert crh["default_reason"] == "no production (company level)"
    defaults = df[df["score_source"] == "default"]
    assert (defaults["temperature_score_c"] == scoring.DEFAULT_SCORE_C).all()
    assert defaults["default_reason"].notna().all()


def test_scores_are_plausible(company_scores: Cleaned) -> None:
    scores = company_scores.data["temperature_score_c"]
    assert scores.between(1.2, 4.5).all()
    assert set(company_scores.data["score_source"]) == {"target", "trend", "default"}


def test_aes_score_reproduced_by_hand(company_scores: Cleaned, intensity_pathways: Cleaned) -> None:
    aes = _score(company_scores, "US00130H1059")
    # base year 2021: s1s2 41455694 t CO2e (emissions.csv source_row 34) / net generation 67920.775 GWh
    # (production.csv source_row 39)
    i0 = 41_455_694 / 67_920_775
    assert aes["base_year"] == 2021 and aes["base_year_intensity"] == pytest.approx(i0)
    assert (aes["score_source"], aes["benchmark_region"]) == ("target", "North America")
    # targets.csv lines 2 and 4: S1+S2 intensity 0.674 t CO2e/MWh (2016) -70 % by 2030 and -100 % by 2040
    milestones = [(2021, i0), (2030, 0.674 * 0.3), (2040, 0.0)]
    path = {}
    for t in range(2022, 2051):
        path[t] = 0.0
        for (y0, v0), (y1, v1) in itertools.pairwise(milestones):
            if y0 <= t <= y1:
                path[t] = v0 + (v1 - v0) * (t - y0) / (y1 - y0)
                break
    pw = intensity_pathways.data
    bm = pw[
        (pw["scope"] == "S1S2")
        & (pw["sector"] == "Electricity Utilities")
        & (pw["region"] == "North America")
    ]
    budget = bm.set_index("year")["intensity"]
    ratio = sum(path.values()) / sum(budget[t] for t in range(2022, 2051))
    expected = 1.5 + 2.2 / 3664 * 396 * (ratio - 1)
    assert aes["overshoot_ratio"] == pytest.approx(ratio)
    assert aes["temperature_score_c"] == pytest.approx(expected)
    assert 1.2 < aes["temperature_score_c"] < 4.5


def test_scores_are_reproducible(company_scores: Cleaned, company_master: Cleaned, reported_emissions: Cleaned,
                                 production: Cleaned, company_targets: Cleaned, intensity_pathways: Cleaned) -> None:  # fmt: skip
    again = portfolio.company_temperature_scores(
        company_master.data, reported_emissions.data, production.data, company_targets.data,
        intensity_pathways.data, BENCHMARK_ID,
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.data, company_scores.data)


def test_steep_target_utility_scores_below_laggard(company_scores: Cleaned) -> None:
    # Eversource (targets.csv line 61): S1+S2 -100 % by 2030, net zero 2030
    eversource = _score(company_scores, "US30040W1080")
    # Hawaiian Electric: no S1+S2 target, intensity trend flat to rising
    hawaiian = _score(company_scores, "US4198701009")
    assert eversource["score_source"] == "target" and hawaiian["score_source"] == "trend"
    assert eversource["temperature_score_c"] < 1.5 < 3.0 < hawaiian["temperature_score_c"]
    utilities = company_scores.data[company_scores.data["sector"] == "Electricity Utilities"]
    by_source = utilities.groupby("score_source")["temperature_score_c"].median()
    assert by_source["target"] < by_source["trend"]


def test_portfolio_score_is_the_value_weighted_mean(portfolio_score: Cleaned, portfolio_holdings: Cleaned,
                                                    company_scores: Cleaned) -> None:  # fmt: skip
    df = portfolio_score.data.set_index("method")
    assert list(df.index) == ["WATS", "WATS_data_only", "ECOTS"]
    scores = company_scores.data.set_index("company_id")["temperature_score_c"]
    holdings = portfolio_holdings.data
    t = [
        scores.get(cid, scores.get(base, 3.2))
        for cid, base in zip(holdings["company_id"], holdings["base_company_id"], strict=True)
    ]
    v = holdings["investment_value_eur"]
    assert df.loc["WATS", "temperature_score_c"] == pytest.approx(float((v * t).sum() / v.sum()))
    assert df.loc["WATS", "total_value_eur"] == 9_146_881_319
    assert 0 < df.loc["WATS", "coverage_value_share"] < 1
    assert df.loc["WATS", "n_holdings"] == 133
    assert df["temperature_score_c"].between(1.2, 4.5).all()


def test_weighting_on_a_tiny_portfolio(company_master: Cleaned) -> None:
    holdings = pd.DataFrame(
        {
            "company_id": ["A", "B", "C"],
            "base_company_id": ["A", "B", "C"],
            "investment_value_eur": [1.0, 3.0, 4.0],
        }
    )
    scores = pd.DataFrame(
        {
            "company_id": ["A", "B"],
            "scope": ["S1S2", "S1S2"],
            "benchmark_id": ["X", "X"],
            "temperature_score_c": [1.5, 2.5],
            "score_source": ["target", "trend"],
            "base_year_emissions_t_co2e": [100.0, 300.0],
        }
    )
    master = pd.DataFrame({"company_id": ["A", "B", "C"], "evic_eur": [10.0, 30.0, None]})
    out = portfolio.portfolio_temperature_score(holdings, scores, master).data.set_index("method")
    # C has no score: default 3.2
    assert out.loc["WATS", "temperature_score_c"] == pytest.approx((1 * 1.5 + 3 * 2.5 + 4 * 3.2) / 8)
    assert out.loc["WATS_data_only", "temperature_score_c"] == pytest.approx((1 * 1.5 + 3 * 2.5) / 4)
    assert out.loc["WATS", "coverage_value_share"] == pytest.approx(0.5)
    # owned emissions: A 1/10*100 = 10, B 3/30*300 = 30
    assert out.loc["ECOTS", "temperature_score_c"] == pytest.approx((10 * 1.5 + 30 * 2.5) / 40)
    assert company_master.rejected_rows == 0
