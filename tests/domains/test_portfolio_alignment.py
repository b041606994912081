"""Portfolio alignment: holdings, company temperature scores and the portfolio score."""

from __future__ import annotations

import pandas as pd
import pytest
from domain_inputs import BENCHMARK_ID, read_bench_json

from domains.benchmarks import transforms as benchmarks
from domains.portfolio_alignment import scoring
from domains.portfolio_alignment import transforms as portfolio
from mesh_assets.ingest.cleaning import Cleaned

SCOPES = ("S1", "S1S2", "S3", "S1S2S3")


@pytest.fixture(scope="module")
def production_pathways() -> Cleaned:
    return benchmarks.production_pathways(read_bench_json("benchmark_production_OECM.json"))


@pytest.fixture(scope="module")
def company_scores(
    company_master: Cleaned,
    reported_emissions: Cleaned,
    production: Cleaned,
    company_targets: Cleaned,
    intensity_pathways: Cleaned,
    production_pathways: Cleaned,
    emission_intensities: Cleaned,
) -> Cleaned:
    """The scores as the asset computes them: all four scopes, production projected with OECM."""
    return portfolio.company_temperature_scores(
        company_master.data, reported_emissions.data, production.data, company_targets.data,
        intensity_pathways.data, BENCHMARK_ID, production_pathways=production_pathways.data,
        emission_intensities=emission_intensities.data,
    )  # fmt: skip


@pytest.fixture(scope="module")
def portfolio_score(portfolio_holdings: Cleaned, company_scores: Cleaned, company_master: Cleaned) -> Cleaned:
    return portfolio.portfolio_temperature_score(
        portfolio_holdings.data, company_scores.data, company_master.data
    )


def _score(scores: Cleaned, company_id: str, scope: str = "S1S2") -> pd.Series:
    df = scores.data
    return df[df["scope"] == scope].set_index("company_id").loc[company_id]


def test_every_company_and_split_is_scored(company_scores: Cleaned, portfolio_holdings: Cleaned) -> None:
    df = company_scores.data
    assert not df.duplicated(["company_id", "scope"]).any()
    assert set(df["scope"]) == set(SCOPES)
    assert len(df) == (119 + 21) * len(SCOPES)  # (company_master rows + ISIN+Sector splits) x scopes
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
    df = company_scores.data
    # lowest possible ITR score: 1.5 C - TCRE x 396 Gt / 0.76 (AFOLU correction) = 1.187 C; ceiling 4.4 C
    assert df["temperature_score_c"].between(1.18, 4.4).all()
    assert set(df["score_source"]) == {"target", "trend", "default"}
    scored = df[df["score_source"] != "default"]
    assert set(scored["score_result_type"]) == {"COMPLETE", "TARGET_ONLY", "TRAJECTORY_ONLY"}
    capped = scored[scored["score_capped"]]
    assert (capped["temperature_score_uncapped_c"] > scoring.MAX_SCORE_C).all()
    assert (capped["temperature_score_c"] == scoring.MAX_SCORE_C).all()


def test_aes_score_reproduced_by_hand(
    company_scores: Cleaned,
    intensity_pathways: Cleaned,
    production_pathways: Cleaned,
    reported_emissions: Cleaned,
    production: Cleaned,
) -> None:
    aes = _score(company_scores, "US00130H1059")
    # base year 2021: s1s2 41455694 t CO2e (emissions.csv source_row 34) / net generation 67920.775 GWh
    # (production.csv source_row 39)
    i0 = 41_455_694 / 67_920_775
    assert aes["base_year"] == 2021 and aes["base_year_intensity"] == pytest.approx(i0)
    assert (aes["score_source"], aes["benchmark_region"]) == ("target", "North America")
    assert aes["score_result_type"] == "COMPLETE"
    pw = intensity_pathways.data
    bm = pw[
        (pw["scope"] == "S1S2")
        & (pw["sector"] == "Electricity Utilities")
        & (pw["region"] == "North America")
    ]
    budget_i = bm.set_index("year")["intensity"]
    pp = production_pathways.data
    growth = pp[(pp["sector"] == "Electricity Utilities") & (pp["region"] == "North America")].set_index(
        "year"
    )
    years = range(2019, 2051)
    prod = {t: growth.at[t, "production_index"] / growth.at[2021, "production_index"] for t in years}
    # history 2019..2021 (reported intensities), then: targets.csv lines 2 and 4: S1+S2 intensity 0.674
    # t CO2e/MWh (2016) -70 % by 2030 and -100 % by 2040
    hist = _aes_history(reported_emissions, production)
    # ITR's target shape: a constant yearly rate to 2030; the fall to zero (more than 91 %) is the rate of
    # a 91 % fall less a linear share that lands on zero in 2040
    v2030 = 0.674 * 0.3
    target = dict(hist)
    for t in range(2022, 2051):
        if t <= 2030:
            target[t] = i0 * (v2030 / i0) ** ((t - 2021) / 9)
        elif t <= 2040:
            share = (t - 2030) / 10
            target[t] = (1 / 11.11) ** share * v2030 - v2030 / 11.11 * share
        else:
            target[t] = 0.0
    rate = aes["trend_annual_rate"]
    trajectory = {**hist, **{t: i0 * (1 + rate) ** (t - 2021) for t in range(2022, 2051)}}
    cb = sum(prod[t] * budget_i[t] for t in years)
    r_target = sum(prod[t] * target[t] for t in years) / cb
    r_traj = sum(prod[t] * trajectory[t] for t in years) / cb
    tcre_b = 2.2 / 3664 * 396 / 0.76  # OECM excludes AFOLU: ITR divides the budget by 0.76
    expected = 0.5 * (1.5 + tcre_b * (r_target - 1)) + 0.5 * (1.5 + tcre_b * (r_traj - 1))
    assert aes["overshoot_ratio"] == pytest.approx(r_target)
    assert aes["trajectory_overshoot_ratio"] == pytest.approx(r_traj)
    assert aes["temperature_score_c"] == pytest.approx(expected)


def _aes_history(reported_emissions: Cleaned, production: Cleaned) -> dict[int, float]:
    """AES's S1S2 intensity 2019..2021 from the cleaned products (best figure per year)."""
    em = reported_emissions.data
    em = em[(em["company_id"] == "US00130H1059") & (em["scope"] == "S1S2") & em["segment"].isna()]
    em = em[em["s3_category"].isna()].set_index("year")["emissions_t_co2e"]
    pr = production.data
    pr = pr[(pr["company_id"] == "US00130H1059") & pr["segment"].isna() & (pr["unit"] == "MWh")]
    pr = pr.set_index("year")["value"]
    return {y: float(em[y] / pr[y]) for y in range(2019, 2022)}


def test_scores_are_reproducible(company_scores: Cleaned, company_master: Cleaned, reported_emissions: Cleaned,
                                 production: Cleaned, company_targets: Cleaned, intensity_pathways: Cleaned,
                                 production_pathways: Cleaned, emission_intensities: Cleaned) -> None:  # fmt: skip
    again = portfolio.company_temperature_scores(
        company_master.data, reported_emissions.data, production.data, company_targets.data,
        intensity_pathways.data, BENCHMARK_ID, production_pathways=production_pathways.data,
        emission_intensities=emission_intensities.data,
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.data, company_scores.data)


def test_steep_target_utility_scores_below_laggard(company_scores: Cleaned) -> None:
    # Eversource (targets.csv line 61): S1+S2 -100 % by 2030, net zero 2030
    eversource = _score(company_scores, "US30040W1080")
    # Hawaiian Electric: no S1+S2 target (only scope 1), intensity trend flat to rising
    hawaiian = _score(company_scores, "US4198701009")
    assert eversource["score_source"] == "target" and hawaiian["trajectory_score_c"] > 3.0
    assert eversource["temperature_score_c"] < 1.5 < 2.0 < hawaiian["temperature_score_c"]
    utilities = company_scores.data[
        (company_scores.data["sector"] == "Electricity Utilities") & (company_scores.data["scope"] == "S1S2")
    ]
    by_source = utilities.groupby("score_source")["temperature_score_c"].median()
    assert by_source["target"] < by_source["trend"]


def test_portfolio_score_is_the_value_weighted_mean(portfolio_score: Cleaned, portfolio_holdings: Cleaned,
                                                    company_scores: Cleaned) -> None:  # fmt: skip
    all_scopes = portfolio_score.data
    assert set(all_scopes["scope"]) == set(SCOPES)
    df = all_scopes[all_scopes["scope"] == "S1S2"].set_index("method")
    assert set(df.index) == {"WATS", "WATS_data_only", "TETS", "MOTS", "EOTS", "ECOTS", "AOTS", "ROTS"}
    s1s2 = company_scores.data[company_scores.data["scope"] == "S1S2"]
    scores = s1s2.set_index("company_id")["temperature_score_c"]
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
    # six holdings have no company_master row: uncovered, counted apart from the default-scored ones
    assert df.loc["WATS", "n_holdings_no_company_data"] == 6
    assert df["temperature_score_c"].between(1.18, 4.4).all()


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
    master = pd.DataFrame(
        {
            "company_id": ["A", "B", "C"],
            "evic_eur": [10.0, 30.0, None],
            "market_cap_eur": [20.0, 10.0, 5.0],
            "ev_eur": [10.0, -5.0, 5.0],
            "assets_eur": [None, 30.0, 5.0],
            "revenue_eur": [1.0, 1.0, 1.0],
        }
    )
    out = portfolio.portfolio_temperature_score(holdings, scores, master).data.set_index("method")
    # C has no score: default 3.2
    assert out.loc["WATS", "temperature_score_c"] == pytest.approx((1 * 1.5 + 3 * 2.5 + 4 * 3.2) / 8)
    assert out.loc["WATS_data_only", "temperature_score_c"] == pytest.approx((1 * 1.5 + 3 * 2.5) / 4)
    assert out.loc["WATS", "coverage_value_share"] == pytest.approx(0.5)
    # owned emissions: A 1/10*100 = 10, B 3/30*300 = 30
    assert out.loc["ECOTS", "temperature_score_c"] == pytest.approx((10 * 1.5 + 30 * 2.5) / 40)
    assert out.loc["TETS", "temperature_score_c"] == pytest.approx((100 * 1.5 + 300 * 2.5) / 400)
    # MOTS: A 1/20*100 = 5, B 3/10*300 = 90
    assert out.loc["MOTS", "temperature_score_c"] == pytest.approx((5 * 1.5 + 90 * 2.5) / 95)
    # a non-positive EV or a missing denominator leaves the holding out of that method
    assert out.loc["EOTS", "temperature_score_c"] == pytest.approx(1.5)
    assert out.loc["AOTS", "temperature_score_c"] == pytest.approx(2.5)
    assert out.loc["ROTS", "temperature_score_c"] == pytest.approx((100 * 1.5 + 900 * 2.5) / 1000)
    assert out.loc["WATS", "n_holdings_no_company_data"] == 1
    assert company_master.rejected_rows == 0


def test_the_trend_is_the_median_change_of_the_winsorized_history_as_itr_does() -> None:
    """ITR clips each entity's history at its own 10th/90th percentiles before the median change."""
    # reported 2020..2022 at -10 % a year, 2019 back-filled from 2020: values 1.0, 1.0, 0.9, 0.81.
    # Linear quantiles of [0.81, 0.9, 1.0, 1.0]: 10th = 0.81 + 0.3 * 0.09 = 0.837, 90th = 1.0, so 2022
    # is raised to 0.837 and the changes are 0, -10 %, -7 %: median -7 % (-10 % without the clip).
    assert scoring._trend_rate({2020: 1.0, 2021: 0.9, 2022: 0.81}, 2022) == pytest.approx(0.837 / 0.9 - 1)
    # one year's data break (x10) is clipped to the 90th percentile and cannot set the trend
    steady = {2015 + k: 100.0 * 0.98**k for k in range(8)}
    assert scoring._trend_rate(steady, 2022) == pytest.approx(-0.02)
    assert scoring._trend_rate({**steady, 2018: steady[2018] * 10}, 2022) == pytest.approx(-0.02)
    # years after the base year do not count
    assert scoring._trend_rate({**steady, 2023: 1000.0}, 2022) == pytest.approx(-0.02)


def test_the_trend_backfills_to_2019_and_clips_to_itr_bounds() -> None:
    # reported from 2021 only: 2019 and 2020 take the 2021 value (two flat years), as ITR back-fills
    assert scoring._trend_rate({2021: 1.0, 2022: 0.5}, 2022) == 0.0
    # a steep fall is clipped at -10 % a year, a rise at +3 %
    assert scoring._trend_rate({2015 + k: 0.5**k for k in range(8)}, 2022) == pytest.approx(-0.10)
    assert scoring._trend_rate({2015 + k: 2.0**k for k in range(8)}, 2022) == pytest.approx(0.03)
    # reaching zero is a 100 % fall, staying there no change; a single year has no trend
    assert scoring._trend_rate({2019: 1.0, 2020: 1.0, 2021: 0.0, 2022: 0.0}, 2022) == pytest.approx(0.0)
    assert scoring._trend_rate({2022: 3.0}, 2022) == 0.0


def test_an_absolute_target_is_met_in_tonnes_as_production_grows() -> None:
    """ITR shapes an absolute target's path in emissions and divides by the projected production."""
    # base year 2020: intensity 2.0 t/u at 100 u (200 t); production doubles linearly by 2030
    production = {t: 100.0 * (1 + (t - 2020) / 10) if t <= 2030 else 200.0 for t in range(2019, 2051)}
    targets = pd.DataFrame(
        {
            "target_year": [2030],
            "target_type": ["absolute"],
            "target_qty": [100.0],  # t CO2e: half the base year's emissions
            "unit": ["t CO2e"],
            "netzero_year": [None],
        }
    )
    milestones, absolute, netzero, used = scoring._target_milestones(targets, "u", 2020, 2.0, production, {})
    # the tonnage over 2030's production (200 u), not the base year's (100 u): 0.5 t/u, not 1.0
    assert (milestones, absolute, netzero, used) == ([(2030, 0.5)], {2030}, None, 1)
    path = scoring._project(2.0, 2020, milestones, None, absolute, production)
    # emissions fall at a constant rate from 200 t to 100 t; intensity = emissions / production
    for t in (2021, 2025, 2030):
        assert path[t] == pytest.approx(200.0 * 0.5 ** ((t - 2020) / 10) / production[t])
    assert path[2040] == pytest.approx(0.5)
