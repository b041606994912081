"""Benchmarks domain: country/region table, country normalisation and benchmark pathways."""

from __future__ import annotations

import pytest
from domain_inputs import BENCH, read_bench_json

from domains.benchmarks import transforms as benchmarks
from mesh_assets.ingest import identifiers
from mesh_assets.ingest.cleaning import Cleaned


def test_country_regions_shape_and_dtypes(country_regions: Cleaned) -> None:
    df = country_regions.data
    # 248 countries in country_region_info.csv + ANT and SCG that only region_classification.csv has
    assert len(df) == 250
    assert df["iso3"].is_unique
    assert country_regions.rejected_rows == 0
    assert str(df["iso2"].dtype) == "string"
    assert df["is_oecd"].dtype == bool
    assert int(df["is_oecd"].sum()) == 38  # oecd_iso.csv has 38 members


def test_namibia_iso2_survives_read_csv(country_regions: Cleaned) -> None:
    # country_region_info.csv line 160: "NA,NAM,...,Namibia" -> read_csv turns "NA" into NaN
    row = country_regions.data.set_index("iso3").loc["NAM"]
    assert row["iso2"] == "NA"
    assert row["itr_region"] == "Global"


def test_itr_regions(country_regions: Cleaned) -> None:
    df = country_regions.data.set_index("iso2")
    assert df.loc["US", "itr_region"] == "North America"
    assert df.loc["GB", "itr_region"] == "Europe"
    assert df.loc["JP", "itr_region"] == "Asia"  # region_ar6_10 "Asia-Pacific Developed"
    assert df.loc["SA", "itr_region"] == "Global"  # Middle East
    assert bool(df.loc["GB", "is_oecd"]) and not bool(df.loc["CN", "is_oecd"])


@pytest.mark.parametrize(
    ("value", "iso2"),
    [
        ("Germany", "DE"),  # fundamentals.csv, BASF SE
        ("Great Britain", "GB"),  # fundamentals.csv, Synthomer Plc
        ("UK", "GB"),  # fundamentals.csv, Breedon Group Plc
        (" United Kingdom (UK) ", "GB"),  # targets.csv, AstraZeneca (with spaces added)
        ("South Korea", "KR"),  # fundamentals.csv, LG Chem Ltd
        ("Taiwan", "TW"),  # fundamentals.csv, Asia Cement Corp
        ("JP", "JP"),
        ("deu", "DE"),
        ("czech republic", "CZ"),  # World Bank name in region_classification.csv
        ("Atlantis", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_normalise_country(country_regions: Cleaned, value: object, iso2: str | None) -> None:
    assert identifiers.normalise_country(value, country_regions.data) == iso2


def test_benchmark_files_all_parse() -> None:
    for benchmark_id, file_name in benchmarks.BENCHMARK_FILES.items():
        assert (BENCH / file_name).exists()
        cleaned = benchmarks.intensity_pathways(read_bench_json(file_name), benchmark_id)
        assert len(cleaned.data) > 0
        assert not [r for r in cleaned.rejected if r.startswith("unknown unit")]
        assert set(cleaned.data["benchmark_id"]) == {benchmark_id}
        assert cleaned.data["unit"].str.startswith("t CO2e/").all()


def test_intensity_pathway_values_match_the_json(intensity_pathways: Cleaned) -> None:
    df = intensity_pathways.data
    assert intensity_pathways.rejected_rows == 0
    # benchmark_EI_OECM_S3.json, S1S2 Steel Global: 2019 = 0.914 t CO2e/(t Steel), 2030 = 0.352
    steel = df[(df["scope"] == "S1S2") & (df["sector"] == "Steel") & (df["region"] == "Global")].set_index(
        "year"
    )
    assert steel.loc[2019, "intensity"] == pytest.approx(0.914)
    assert steel.loc[2030, "intensity"] == pytest.approx(0.352)
    assert steel.loc[2019, "unit"] == "t CO2e/(t Steel)"
    assert steel.loc[2019, "base_year"] == 2019
    # S1S2 Electricity Utilities Europe 2030 = 0.0757 t CO2e/MWh
    power = df[
        (df["scope"] == "S1S2") & (df["sector"] == "Electricity Utilities") & (df["region"] == "Europe")
    ]
    assert power.set_index("year").loc[2030, "intensity"] == pytest.approx(0.0757)
    # S1S2 Consumer Products Global 2019 = 0.351 kg CO2e/USD -> 0.000351 t CO2e/USD
    cp = df[(df["scope"] == "S1S2") & (df["sector"] == "Consumer Products") & (df["region"] == "Global")]
    row = cp.set_index("year").loc[2019]
    assert row["intensity"] == pytest.approx(0.351e-3)
    assert (row["unit"], row["unit_reported"], row["intensity_reported"]) == (
        "t CO2e/USD",
        "kg CO2e/USD",
        0.351,
    )
    assert (row["temperature_c"], row["global_budget_gt_co2"]) == (1.5, 396.0)
    # 23 sectors x 3 regions x 5 scopes x 32 years
    assert len(df) == 23 * 3 * 5 * 32


def test_tpi_pathways() -> None:
    df = benchmarks.intensity_pathways(read_bench_json("benchmark_EI_TPI_1_5_degrees.json"), "TPI_1_5C").data
    # benchmark_EI_TPI_1_5_degrees.json S1 Airlines Global 2019 = 1020 g CO2 / tkm
    airlines = df[(df["sector"] == "Airlines") & (df["year"] == 2019)].iloc[0]
    assert airlines["intensity"] == pytest.approx(1020e-6)
    assert airlines["unit"] == "t CO2e/tkm"
    assert set(df[df["sector"] == "Electricity Utilities"]["region"]) == {
        "Global", "Europe", "North America", "OECD", "non-OECD"
    }  # fmt: skip
    below2 = benchmarks.intensity_pathways(
        read_bench_json("benchmark_EI_TPI_below_2_degrees.json"), "TPI_below_2C"
    )
    assert below2.data["temperature_c"].iloc[0] == 1.65
    assert below2.data["global_budget_gt_co2"].iloc[0] == 646.0
    # TPI 2 C has "Aluminium"; it is named as in the company data
    tpi2 = benchmarks.intensity_pathways(read_bench_json("benchmark_EI_TPI_2_degrees.json"), "TPI_2C").data
    assert "Aluminum" in set(tpi2["sector"]) and "Aluminium" in set(tpi2["sector_reported"])


def test_non_finite_benchmark_value_is_counted() -> None:
    # benchmark_EI_OECM_PC.json: S1 Coal Europe 2050 is the string "-inf"
    cleaned = benchmarks.intensity_pathways(read_bench_json("benchmark_EI_OECM_PC.json"), "OECM_PC_1_5C")
    assert cleaned.rejected == {"non-finite intensity value": 1}
    coal = cleaned.data[(cleaned.data["scope"] == "S1") & (cleaned.data["sector"] == "Coal")]
    assert 2050 not in set(coal[coal["region"] == "Europe"]["year"])
    assert 2050 in set(coal[coal["region"] == "Global"]["year"])


def test_unknown_benchmark_unit_is_counted_not_raised() -> None:
    doc = {
        "benchmark_temperature": "1.5 delta_degC",
        "benchmark_global_budget": "396 Gt CO2",
        "S1S2": {
            "benchmarks": [
                {"sector": "Steel", "region": "Global", "benchmark_metric": "t CO2e/(t Steel)",
                 "projections_nounits": [{"year": 2019, "value": 1.0}, {"year": 2020, "value": 0.9}]},
                {"sector": "Widgets", "region": "Global", "benchmark_metric": "t CO2e/(t Widget)",
                 "projections_nounits": [{"year": 2019, "value": 1.0}, {"year": 2020, "value": 0.9}]},
            ]
        },
    }  # fmt: skip
    cleaned = benchmarks.intensity_pathways(doc, "TEST")
    assert len(cleaned.data) == 2
    assert cleaned.rejected == {"unknown unit 't CO2e/(t Widget)'": 2}


def test_production_pathways() -> None:
    cleaned = benchmarks.production_pathways(read_bench_json(benchmarks.PRODUCTION_BENCHMARK_FILE))
    df = cleaned.data
    assert cleaned.rejected_rows == 0
    assert len(df) == 69 * 32
    steel = df[(df["sector"] == "Steel") & (df["region"] == "Global")].set_index("year")
    # base_year_production "1869.6 Fe * megametric_ton"; growth 2020 = 0.00306
    assert steel.loc[2019, "base_year_production"] == pytest.approx(1.8696e9)
    assert steel.loc[2019, "unit"] == "t Steel"
    assert steel.loc[2019, "production_index"] == 1.0
    assert steel.loc[2020, "production_index"] == pytest.approx(1.00306)
    coal_eu = df[(df["sector"] == "Coal") & (df["region"] == "Europe")].set_index("year")
    assert coal_eu.loc[2050, "growth_rate"] == -1.0 and coal_eu.loc[2050, "production_index"] == 0.0
    assert df["production_index"].notna().all()
    assert str(df["year"].dtype) == "Int64"
