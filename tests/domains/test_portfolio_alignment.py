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
    milestones, absolute, netzero, used = scoring._target_milestones(
        targets.to_dict("records"), "u", 2020, 2.0, production, {}
    )
    # the tonnage over 2030's production (200 u), not the base year's (100 u): 0.5 t/u, not 1.0
    assert (milestones, absolute, netzero, used) == ([(2030, 0.5)], {2030}, None, 1)
    path = scoring._project(2.0, 2020, milestones, None, absolute, production)
    # emissions fall at a constant rate from 200 t to 100 t; intensity = emissions / production
    for t in (2021, 2025, 2030):
        assert path[t] == pytest.approx(200.0 * 0.5 ** ((t - 2020) / 10) / production[t])
    assert path[2040] == pytest.approx(0.5)


def _reported(rows: list[tuple[str | None, str, str | None, int, float]]) -> pd.DataFrame:
    """reported_emissions rows (segment, scope, s3_category, year, t CO2e) of one company ``C``."""
    segment, scope, category, year, value = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "company_id": "C",
            "segment": pd.array(segment, dtype="string"),
            "scope": scope,
            "s3_category": pd.array(category, dtype="string"),
            "year": year,
            "emissions_t_co2e": value,
        }
    )


def test_a_whole_company_takes_its_own_sector_figures_first_and_fills_the_rest() -> None:
    """As ITR's loader ranks submetrics naming the company's sector first (an electric utility's
    "electricity" scope 3), year by year, and sums S1S2 + S3 from the figures it picked."""
    index = scoring.index_emissions(
        _reported(
            [
                (None, "S1S2", None, 2020, 10.0),
                (None, "S1S2", None, 2021, 11.0),
                (None, "S3", None, 2021, 50.0),
                ("Electricity Utilities", "S3", None, 2020, 40.0),
                ("Gas Utilities", "S3", None, 2020, 7.0),  # another sector's figure: not the company's
            ]
        )
    )["C"]
    view = scoring.own_sector_view(index, "Electricity Utilities")
    assert set(view) == {(None, "S1S2"), (None, "S3")}
    assert view[(None, "S3")] == {2020: 40.0, 2021: 50.0}
    s1s2s3 = scoring.emissions_series(view, None, "S1S2S3")
    assert s1s2s3 == {2020: (50.0, "S1S2+S3"), 2021: (61.0, "S1S2+S3")}
    # without the view (the company level alone) scope 3 of 2020 is missing
    assert set(scoring.emissions_series(index, None, "S1S2S3")) == {2021}


def test_scope_3_of_a_sector_is_the_category_its_benchmark_covers() -> None:
    """ITR prefers category 3 for power and category 11 for fuels, gas and vehicles to the S3 total."""
    index = scoring.index_emissions(
        _reported(
            [
                (None, "S3", None, 2020, 100.0),
                (None, "S3", None, 2021, 100.0),
                (None, "S3", "11", 2021, 80.0),
                (None, "S3", "3", 2021, 9.0),
            ]
        )
    )["C"]
    assert scoring.emissions_series(index, None, "S3", "Autos") == {
        2020: (100.0, "reported"),
        2021: (80.0, "reported"),
    }
    assert scoring.emissions_series(index, None, "S3", "Electricity Utilities")[2021] == (9.0, "reported")
    # other sectors: the total only, never a category standing in for it
    assert scoring.emissions_series(index, None, "S3", "Steel") == {
        2020: (100.0, "reported"),
        2021: (100.0, "reported"),
    }


def test_s2_counts_as_zero_only_when_neither_s2_nor_s1s2_is_reported() -> None:
    """ITR treats a missing scope 2 as zero for a company without S2 or S1S2 figures; a company that
    reports S1S2 for some years has no S1S2 in the years it does not."""
    s1_only = scoring.index_emissions(
        _reported([(None, "S1", None, 2020, 5.0), (None, "S1", None, 2021, 6.0)])
    )["C"]
    assert scoring.emissions_series(s1_only, None, "S1S2") == {
        2020: (5.0, "S1 only (no S2 reported)"),
        2021: (6.0, "S1 only (no S2 reported)"),
    }
    with_s1s2 = scoring.index_emissions(
        _reported(
            [(None, "S1", None, 2020, 5.0), (None, "S1", None, 2021, 6.0), (None, "S1S2", None, 2020, 7.0)]
        )
    )["C"]
    assert scoring.emissions_series(with_s1s2, None, "S1S2") == {2020: (7.0, "reported")}


def test_a_whole_company_takes_its_own_sector_production_first() -> None:
    production = pd.DataFrame(
        {
            "segment": pd.array(
                ["Electricity Utilities", "Electricity Utilities", None, None, "Gas Utilities"],
                dtype="string",
            ),
            "product": pd.array([None] * 5, dtype="string"),
            "unit": ["MWh", "MWh", "MWh", "MWh", "GJ"],
            "year": [2020, 2021, 2019, 2020, 2020],
            "value": [20.0, 21.0, 9.0, 10.0, 3.0],
        }
    )
    own = scoring.own_sector_production(production, "Electricity Utilities")
    assert own["segment"].isna().all()
    assert sorted(zip(own["year"], own["value"], strict=True)) == [(2019, 9.0), (2020, 20.0), (2021, 21.0)]


def test_net_zero_years_propagate_between_scopes_as_itr_infers_them() -> None:
    def targets(*rows: tuple[str, int, int | None, float]) -> pd.DataFrame:
        scope, year, netzero, ambition = zip(*rows, strict=True)
        return pd.DataFrame(
            {"scope": scope, "target_year": year, "netzero_year": pd.array(netzero, dtype="Int64"),
             "reduction_ambition": ambition}
        )  # fmt: skip

    # an S1S2S3 net zero is one for every part
    assert scoring.inferred_netzero(targets(("S1S2S3", 2030, 2045, 0.5))) == dict.fromkeys(
        ("S1", "S2", "S1S2", "S3", "S1S2S3"), 2045
    )
    # S1S2S3 reaches net zero only when S3 does too; a 100 % cut is a net zero in its target year
    assert scoring.inferred_netzero(targets(("S1S2", 2030, 2040, 0.5))) == {
        "S1": 2040, "S2": 2040, "S1S2": 2040, "S3": None, "S1S2S3": None
    }  # fmt: skip
    got = scoring.inferred_netzero(targets(("S1S2", 2030, 2040, 0.5), ("S3", 2035, None, 1.0)))
    assert (got["S3"], got["S1S2S3"]) == (2035, 2040)


def _one_company_context(
    targets: pd.DataFrame, produced: list[float] | None = None, years: range = range(2017, 2023)
) -> tuple[scoring.Context, dict]:
    """A power company with S1, S2 and S3 (category 3) emissions falling 5 % a year, production of ``years``
    ``produced`` (flat 1000 MWh by default; projected flat from 2019 as the benchmark has no growth)."""
    rows = [(None, scope, None, y, base * 0.95 ** (y - 2017)) for y in years for scope, base in
            (("S1", 80.0), ("S2", 20.0), ("S1S2", 100.0), ("S3", 50.0))]  # fmt: skip
    n = len(years)
    production = pd.DataFrame(
        {"segment": pd.array([None] * n, dtype="string"), "product": pd.array([None] * n, dtype="string"),
         "unit": "MWh", "year": list(years), "value": produced or [1000.0] * n}
    )  # fmt: skip
    pathways = pd.DataFrame(
        [
            {"sector": "Electricity Utilities", "scope": scope, "region": "Global", "year": y,
             "intensity": level * (1 - (y - 2019) / 40), "unit": "t CO2e/MWh", "temperature_c": 1.5,
             "global_budget_gt_co2": 500.0, "is_afolu_included": True}
            for scope, level in (("S1", 0.08), ("S2", 0.02), ("S1S2", 0.1), ("S3", 0.05), ("S1S2S3", 0.15))
            for y in range(2019, 2051)
        ]
    )  # fmt: skip
    ctx = scoring.Context(
        emissions=scoring.index_emissions(_reported(rows)),
        production={"C": production},
        targets={"C": targets},
        pathways=scoring.index_pathways(pathways),
        fx_to_eur={},
        benchmark_id="TEST",
    )
    entity = {"company_id": "C", "base_company_id": "C", "company_name": "C", "sector": "Electricity Utilities",
              "region": "Global", "is_oecd": None, "segment": None, "is_split": False}  # fmt: skip
    return ctx, entity


def _targets(*rows: tuple[str, int, float, int | None]) -> pd.DataFrame:
    scope, year, ambition, netzero = zip(*rows, strict=True)
    return pd.DataFrame(
        {"scope": scope, "s3_category": pd.array([None] * len(rows), dtype="string"), "target_type": "intensity",
         "target_year": year, "base_year": 2019, "reduction_ambition": ambition,
         "target_qty": [0.1 * (1 - a) for a in ambition], "unit": "t CO2e/MWh",
         "netzero_year": pd.array(netzero, dtype="Int64")}
    )  # fmt: skip


def test_a_newer_drop_is_scored_from_its_newest_year() -> None:
    """No year of the sample is built in: figures up to 2024 make 2024 the base year, as ITR's projection
    starts from the end of the drop's years."""
    ctx, entity = _one_company_context(_targets(("S1S2", 2040, 0.5, None)), years=range(2017, 2025))
    row = scoring.score_entity(ctx, entity, "S1S2")
    assert row["base_year"] == 2024
    assert row["base_year_emissions_t_co2e"] == pytest.approx(100.0 * 0.95**7)
    assert row["score_source"] != "default"


def test_a_scope_without_targets_falls_to_the_net_zero_its_neighbours_imply() -> None:
    """ITR: S1 of a company with only an S1S2S3 net-zero target is projected to zero by that year."""
    ctx, entity = _one_company_context(_targets(("S1S2S3", 2030, 0.4, 2045)))
    s1 = scoring.score_entity(ctx, entity, "S1")
    assert (s1["score_result_type"], s1["netzero_year"], s1["n_targets_used"]) == ("COMPLETE", 2045, 0)
    assert s1["projected_intensity_2050"] == 0.0
    assert s1["target_score_c"] < s1["trajectory_score_c"]
    # without any net zero there is nothing to infer
    ctx, entity = _one_company_context(_targets(("S1S2S3", 2030, 0.4, None)))
    assert scoring.score_entity(ctx, entity, "S1")["score_result_type"] == "TRAJECTORY_ONLY"


def test_s1s2s3_without_targets_sums_the_s1s2_and_s3_target_paths() -> None:
    ctx, entity = _one_company_context(_targets(("S1S2", 2030, 0.5, 2040), ("S3", 2035, 0.3, 2050)))
    s1s2, s3, total = (scoring.score_entity(ctx, entity, scope) for scope in ("S1S2", "S3", "S1S2S3"))
    assert total["score_result_type"] == "COMPLETE" and total["netzero_year"] == 2050
    # same production and horizon: the cumulative target emissions add up
    assert total["cumulative_emissions_t_co2e"] == pytest.approx(
        s1s2["cumulative_emissions_t_co2e"] + s3["cumulative_emissions_t_co2e"]
    )
    assert total["projected_intensity_2030"] == pytest.approx(
        s1s2["projected_intensity_2030"] + s3["projected_intensity_2030"]
    )
    # without a net-zero year for S3, ITR has no S1S2S3 target
    ctx, entity = _one_company_context(_targets(("S1S2", 2030, 0.5, 2040), ("S3", 2035, 0.3, None)))
    assert scoring.score_entity(ctx, entity, "S1S2S3")["score_result_type"] == "TRAJECTORY_ONLY"


def test_company_emissions_are_allocated_to_its_splits_by_benchmark_emissions() -> None:
    """ITR's _allocate_emissions: a split's share of a company-wide scope is I_bm(sector, 2019) * P(2019)
    over the same for every split; a scope (or a part of it) a split reports itself is not allocated."""
    rows = [(None, "S1", None, y, 100.0) for y in (2019, 2020)] + [(None, "S1S2", None, 2019, 130.0)]
    rows += [("Gas Utilities", "S2", None, 2019, 4.0)]  # a split's own S2: S1S2 stays unallocated
    production = pd.DataFrame(
        {"segment": pd.array(["Electricity Utilities", "Gas Utilities"], dtype="string"),
         "product": pd.array([None, None], dtype="string"), "unit": ["MWh", "GJ"], "year": [2019, 2019],
         "value": [1000.0, 3000.0]}
    )  # fmt: skip
    pathways = pd.DataFrame(
        [
            {"sector": sector, "scope": scope, "region": "Global", "year": 2019, "intensity": value,
             "unit": unit, "temperature_c": 1.5, "global_budget_gt_co2": 500.0, "is_afolu_included": True}
            for sector, unit, value in (("Electricity Utilities", "t CO2e/MWh", 0.3), ("Gas Utilities", "t CO2e/GJ", 0.05))
            for scope in ("S1", "S1S2")
        ]
    )  # fmt: skip
    ctx = scoring.Context(
        emissions=scoring.index_emissions(_reported(rows)),
        production={"C": production},
        targets={},
        pathways=scoring.index_pathways(pathways),
        fx_to_eur={},
        benchmark_id="TEST",
        splits={"C": ("Electricity Utilities", "Gas Utilities")},
    )

    def split(sector: str) -> dict:
        return {"company_id": f"C+{sector}", "base_company_id": "C", "company_name": "C", "sector": sector,
                "region": "Global", "is_oecd": None, "segment": sector, "is_split": True}  # fmt: skip

    power, gas = split("Electricity Utilities"), split("Gas Utilities")
    # benchmark emissions at the split's production: 0.3 * 1000 = 300 t and 0.05 * 3000 = 150 t
    assert scoring.allocation_weight(ctx, power, "S1") == pytest.approx(2 / 3)
    assert scoring.allocation_weight(ctx, gas, "S1") == pytest.approx(1 / 3)
    view = scoring.split_view(ctx, power, ctx.emissions["C"])
    assert view[("Electricity Utilities", "S1")] == pytest.approx({2019: 200 / 3, 2020: 200 / 3})
    assert ("Electricity Utilities", "S1S2") not in view
    # the splits' shares add up to the company's figure
    gas_view = scoring.split_view(ctx, gas, ctx.emissions["C"])
    assert view[("Electricity Utilities", "S1")][2019] + gas_view[("Gas Utilities", "S1")][
        2019
    ] == pytest.approx(100.0)


def test_s1s2_of_a_company_with_s1_targets_adds_an_s2_path_along_the_benchmark() -> None:
    """ITR synthesizes an S2 target that meets the benchmark's S2 intensity in the S1 target's year and
    sums it with the S1 target path; without an S1 net-zero year there is no S1S2 target."""
    ctx, entity = _one_company_context(_targets(("S1", 2030, 0.5, 2040)))
    s1, s1s2 = scoring.score_entity(ctx, entity, "S1"), scoring.score_entity(ctx, entity, "S1S2")
    assert s1s2["score_result_type"] == "COMPLETE"
    # S1S2 net zero: the later of S1's (2040) and the benchmark S2's lowest year (2050 in the context)
    assert s1s2["netzero_year"] == 2050
    # 2030: the S1 target path plus the benchmark's S2 intensity that year (0.02 * (1 - 11 / 40))
    s2_benchmark_2030 = 0.02 * (1 - (2030 - 2019) / 40)
    assert s1s2["projected_intensity_2030"] == pytest.approx(
        s1["projected_intensity_2030"] + s2_benchmark_2030
    )
    ctx, entity = _one_company_context(_targets(("S1", 2030, 0.5, None)))
    assert scoring.score_entity(ctx, entity, "S1S2")["score_result_type"] == "TRAJECTORY_ONLY"


def test_an_absolute_target_path_starts_from_the_reported_tonnes() -> None:
    """ITR starts a path led by an absolute target from the latest reported emissions over the projected
    production, so its cumulative target emissions begin with what the company emitted; a path led by an
    intensity target starts from the reported intensity."""
    produced = [1000.0, 1000.0, 1000.0, 900.0, 850.0, 800.0]  # reported; projected: 1000 (2019's) throughout
    emitted = {y: 100.0 * 0.95 ** (y - 2017) for y in range(2019, 2023)}  # S1S2, t CO2e
    absolute = _targets(("S1S2", 2030, 0.5, None)).assign(
        target_type="absolute", unit="t CO2e", target_qty=40.0
    )
    ctx, entity = _one_company_context(absolute, produced)
    path = scoring._score(ctx, entity, "S1S2")[1].path
    for year, tonnes in emitted.items():
        assert path[year] * 1000.0 == pytest.approx(tonnes)
    assert path[2030] == pytest.approx(40.0 / 1000.0)
    # the same ambition as an intensity target: the reported intensity of 2022 (tonnes / 800 MWh)
    ctx, entity = _one_company_context(_targets(("S1S2", 2030, 0.5, None)), produced)
    path = scoring._score(ctx, entity, "S1S2")[1].path
    assert path[2022] == pytest.approx(emitted[2022] / 800.0)
    # the first target ITR follows leads: the earliest; on a tie the intensity one unless set later
    both = pd.concat([_targets(("S1S2", 2030, 0.5, None)), absolute.assign(target_year=2035)])
    assert not scoring._absolute_first(both.to_dict("records"), 2022)
    assert scoring._absolute_first(both.assign(target_year=[2035, 2030]).to_dict("records"), 2022)
    tie = pd.concat(
        [absolute.assign(start_year=2021), _targets(("S1S2", 2030, 0.5, None)).assign(start_year=2020)]
    )
    assert scoring._absolute_first(tie.to_dict("records"), 2022)
    assert not scoring._absolute_first(tie.assign(start_year=2021).to_dict("records"), 2022)
    assert not scoring._absolute_first(absolute.to_dict("records"), 2030)  # no target after the base year


def test_an_absolute_target_binds_in_tonnes_when_production_falls() -> None:
    """Half the production by 2030 and a 40 % cut in tonnes: intensity may rise by 20 %, and the target
    still binds (ITR compares tonnes), where an intensity target above the start would not."""
    production = {2022: 100.0, 2030: 50.0}
    assert scoring._binding_milestones({2030: 1.2}, 1.0, 2022, None, {2030}, production) == [(2030, 1.2)]
    assert scoring._binding_milestones({2030: 1.2}, 1.0, 2022, None) == []
    # met in tonnes already: not binding
    assert scoring._binding_milestones({2030: 2.2}, 1.0, 2022, None, {2030}, production) == []


def test_s1s2_without_targets_sums_the_s1_and_s2_target_paths() -> None:
    """ITR: a company with S1 and S2 targets but none for S1S2 follows both on S1S2, not just the net zero
    they imply."""
    ctx, entity = _one_company_context(_targets(("S1", 2030, 0.5, 2040), ("S2", 2035, 0.3, 2050)))
    s1, s2, s1s2 = (scoring._score(ctx, entity, scope)[1] for scope in ("S1", "S2", "S1S2"))
    assert (s1s2.netzero, s1s2.used) == (2050, 2)
    for year in range(2023, 2051):
        assert s1s2.path[year] == pytest.approx(s1.path[year] + s2.path[year])
    # up to the base year S1S2 keeps its own reported intensity
    assert s1s2.path[2022] == pytest.approx(100.0 * 0.95**5 / 1000.0)
    assert scoring.score_entity(ctx, entity, "S1S2")["score_result_type"] == "COMPLETE"


def test_a_newer_target_for_the_same_year_supersedes_an_older_one() -> None:
    """ITR keeps, of several targets for one year, the one set last (latest start year), even when an
    older one was more ambitious; on the same start year the intensity target."""
    production = dict.fromkeys(range(2019, 2051), 100.0)
    targets = pd.DataFrame(
        {
            "target_year": [2030, 2030, 2030],
            "start_year": [2018, 2021, 2021],
            "target_type": ["intensity", "intensity", "absolute"],
            "target_qty": [0.3, 0.5, 20.0],  # the absolute one: 0.2 t/u over 100 u
            "unit": ["t CO2e/u", "t CO2e/u", "t CO2e"],
            "netzero_year": [None, None, None],
        }
    )
    milestones, absolute, _, used = scoring._target_milestones(
        targets.to_dict("records"), "u", 2022, 1.0, production, {}
    )
    assert (milestones, absolute, used) == ([(2030, 0.5)], set(), 1)
    # set later than the intensity target, the absolute one supersedes it
    later = targets.assign(start_year=[2018, 2021, 2022])
    milestones, absolute, _, used = scoring._target_milestones(
        later.to_dict("records"), "u", 2022, 1.0, production, {}
    )
    assert (milestones, absolute, used) == ([(2030, 0.2)], {2030}, 1)


def test_a_summed_target_path_is_zero_after_its_net_zero_year() -> None:
    """S3's own path stays at its 2045 target (a 30 % cut, declared as its net zero); ITR's S1S2S3, net zero
    in 2045 as its parts imply, falls to zero after it instead of carrying S3's remainder."""
    targets = _targets(("S1S2", 2030, 0.5, 2040), ("S3", 2045, 0.3, 2045))
    targets.loc[targets["scope"] == "S3", "target_qty"] = 0.05 * 0.95**2 * 0.7  # 30 % below S3's 2019
    ctx, entity = _one_company_context(targets)
    s1s2, s3, total = (scoring._score(ctx, entity, scope)[1] for scope in ("S1S2", "S3", "S1S2S3"))
    assert total.netzero == 2045 and s3.path[2050] > 0.0
    assert total.path[2045] == pytest.approx(s1s2.path[2045] + s3.path[2045])
    assert all(total.path[year] == 0.0 for year in range(2046, 2051))


def test_a_reported_intensity_times_production_comes_before_a_sum_of_parts() -> None:
    """ITR turns a reported S1S2 intensity into S1S2 emissions with the production and ranks them as the
    scope's own figure: after reported S1S2 emissions, before S1 + S2, and on into S1S2S3."""
    em = scoring.index_emissions(
        _reported(
            [(None, "S1", None, y, 80.0) for y in (2020, 2021, 2022)]
            + [(None, "S2", None, y, 10.0) for y in (2020, 2021, 2022)]
            + [(None, "S1S2", None, 2022, 95.0)]
            + [(None, "S3", None, y, 50.0) for y in (2020, 2021, 2022)]
        )
    )["C"]
    intensity = pd.DataFrame(
        {"company_id": "C", "segment": pd.array([None, None], dtype="string"),
         "s3_category": pd.array([None, None], dtype="string"), "scope": "S1S2", "year": [2021, 2022],
         "intensity": [0.085, 0.09], "unit": "t CO2e/MWh"}
    )  # fmt: skip
    ctx = scoring.Context(
        emissions={}, production={}, targets={}, pathways={}, fx_to_eur={}, benchmark_id="T",
        intensities={"C": intensity},
    )  # fmt: skip
    production = {2020: 1000.0, 2021: 1000.0, 2022: 1000.0}
    derived = {
        sc: scoring._emissions_from_intensity(ctx, "C", None, sc, "MWh", production) for sc in ("S1S2",)
    }
    assert derived == {"S1S2": {2021: pytest.approx(85.0), 2022: pytest.approx(90.0)}}
    assert scoring.emissions_series(em, None, "S1S2", None, derived) == {
        2020: (90.0, "S1+S2"),
        2021: (pytest.approx(85.0), "reported intensity x production"),
        2022: (95.0, "reported"),
    }
    assert scoring.emissions_series(em, None, "S1S2S3", None, derived)[2021] == (
        pytest.approx(135.0),
        "S1S2 from intensity+S3",
    )
    # in GWh the same intensity is a thousandth per benchmark unit
    assert scoring._emissions_from_intensity(ctx, "C", None, "S1S2", "GWh", production)[
        2021
    ] == pytest.approx(85_000.0)


def test_a_target_already_met_holds_the_intensity_flat() -> None:
    """ITR: a scope whose targets are all met already has a target path all the same, holding the
    intensity it starts from (the company committed to stay at most at its target), not no target."""
    ctx, entity = _one_company_context(_targets(("S1S2", 2030, 0.0, None)))  # 0.1 t/MWh, above 0.077
    row = scoring.score_entity(ctx, entity, "S1S2")
    assert (row["score_result_type"], row["n_targets_used"], row["netzero_year"]) == ("COMPLETE", 1, None)
    assert (
        row["projected_intensity_2030"]
        == row["projected_intensity_2050"]
        == pytest.approx(row["base_year_intensity"])
    )
    assert row["target_score_c"] > row["trajectory_score_c"]  # flat does worse than the 5 % a year fall
