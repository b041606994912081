"""Emissions domain: reported emissions, production, intensities and targets from the ITR sample."""

from __future__ import annotations

import pandas as pd
import pytest
from domain_inputs import read_sample

from domains.emissions import transforms as emissions
from mesh_assets.ingest.cleaning import Cleaned

X_ROWS = "base_year marked 'x' (alternative figure ITR ignores)"
DUPLICATE = "duplicate row (same key and value as the kept row)"
CONFLICT = "conflicting duplicate (same key, other value; the highest source_row is kept)"


def _one(df: pd.DataFrame, **where: object) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for col, value in where.items():
        mask &= df[col].isna() if value is None else df[col] == value
    hits = df[mask]
    assert len(hits) == 1, hits
    return hits.iloc[0]


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        ("emissions.csv", emissions.reported_emissions),
        ("production.csv", emissions.production),
        ("emission_intensities.csv", emissions.emission_intensities),
    ],
)
def test_every_input_row_is_kept_or_counted(name: str, transform) -> None:
    raw = read_sample(name)
    cleaned = transform(raw)
    assert len(raw) == len(cleaned.data) + cleaned.rejected_rows


def test_x_rows_and_duplicates_counted(reported_emissions: Cleaned, production: Cleaned,
                                       emission_intensities: Cleaned) -> None:  # fmt: skip
    # README: 431 emission / 88 production / 40 intensity long rows carry base_year x (341 "x" + 90 "X")
    assert reported_emissions.rejected[X_ROWS] == 431
    assert production.rejected[X_ROWS] == 88
    assert emission_intensities.rejected[X_ROWS] == 40
    # README: 71 emission rows repeat (company_id, report_date, metric, submetric, boundary, year); 5 of them
    # are x rows, so 66 remain: 59 with the same value and 7 with another value
    assert reported_emissions.rejected[DUPLICATE] == 59
    assert reported_emissions.rejected[CONFLICT] == 7
    assert (production.rejected[DUPLICATE], production.rejected[CONFLICT]) == (16, 1)
    assert emission_intensities.rejected[DUPLICATE] == 4
    # CMS Energy (US1258961002), emissions.csv source_row 310: submetric "ignore" for 2019-2021
    assert reported_emissions.rejected["submetric 'ignore'"] == 3


def test_duplicate_counts_on_a_small_frame() -> None:
    # emissions.csv lines 476-477 (BMW s1 2019, report 2020-12-31): the same key with 642259 (source_row 214)
    # and 678403 (source_row 227); plus a copy of line 477 and an x-marked copy, made up for the test
    raw = read_sample("emissions.csv")
    bmw = raw[(raw["company_id"] == "DE0005190003") & (raw["metric"] == "s1") & (raw["year"] == 2019)]
    bmw = bmw[bmw["report_date"] == "2020-12-31"]
    frame = pd.concat([bmw, bmw.iloc[[1]], bmw.iloc[[0]].assign(base_year="X")])
    cleaned = emissions.reported_emissions(frame)
    assert cleaned.rejected == {DUPLICATE: 1, CONFLICT: 1, X_ROWS: 1}
    row = cleaned.data.iloc[0]
    assert (row["emissions_t_co2e"], row["source_row"]) == (678403.0, 227)


def test_units_converted_to_tonnes(reported_emissions: Cleaned) -> None:
    df = reported_emissions.data
    # emissions.csv source_row 1041: Saudi Aramco s1 2019 = 52 Mt CO2e
    assert _one(df, company_id="2222.SR", scope="S1", year=2019, segment=None)["emissions_t_co2e"] == 52e6
    # source_row 1883: Covestro s1 2016 = 2.33 Millions t CO2e
    covestro = _one(df, company_id="DE0006062144", scope="S1", year=2016, segment=None)
    assert covestro["emissions_t_co2e"] == pytest.approx(2.33e6)
    assert covestro["unit_reported"] == "Millions t CO2e"
    # source_row 1139: Tokyo Electric Power s1 2018 = 81604 kt CO2e
    assert (
        _one(df, company_id="9501.T", scope="S1", year=2018, segment=None)["emissions_t_co2e"] == 81_604_000
    )
    # source_row 147: Black Hills gas-segment s1 2019 = 11090 t CH4 -> x 28 (AR5 GWP100)
    bh = _one(df, company_id="US0921131092", scope="S1", year=2019, segment="Gas Utilities")
    assert bh["emissions_t_co2e"] == pytest.approx(11090 * 28)
    assert str(df["emissions_t_co2e"].dtype) == "float64" and str(df["year"].dtype) == "Int64"


def test_best_figure_rules(reported_emissions: Cleaned) -> None:
    df = reported_emissions.data
    # BMW s1 2019: 678403 in the 2021-12-31 report (source_row 240) beats the older 2020-12-31 block
    bmw = _one(df, company_id="DE0005190003", scope="S1", year=2019, segment=None)
    assert (bmw["emissions_t_co2e"], bmw["source_row"]) == (678403.0, 240)
    assert bmw["report_date"] == pd.Timestamp("2021-12-31")
    # AstraZeneca s2 2019, 2021-12-31 report: location-based 207005 (source_row 2458) wins over
    # market-based 21135 (source_row 2457)
    az = _one(df, company_id="GB0009895292", scope="S2", year=2019, segment=None)
    assert (az["emissions_t_co2e"], az["s2_method"], az["source_row"]) == (207005.0, "location", 2458)
    # AES s1s2 2021: 41455694 t CO2e (source_row 34)
    aes = _one(df, company_id="US00130H1059", scope="S1S2", year=2021, segment=None, s3_category=None)
    assert aes["emissions_t_co2e"] == 41_455_694
    # one figure per key
    keys = ["company_id", "segment", "scope", "s3_category", "year"]
    assert not df[keys].astype(str).duplicated().any()


def test_scopes_and_scope3_categories(reported_emissions: Cleaned) -> None:
    df = reported_emissions.data
    assert set(df["scope"]) == {"S1", "S2", "S3", "S1S2", "S1S3", "S1S2S3"}
    # s1+s2 rows (17 in emissions.csv) and s1s2 rows end up under the same scope
    assert "s1+s2" in set(df[df["scope"] == "S1S2"]["metric_reported"])
    # AES s3 2021: the total (source_row 35) and category 3 (source_row 36) are separate rows
    total = _one(df, company_id="US00130H1059", scope="S3", year=2021, s3_category=None)
    cat3 = _one(df, company_id="US00130H1059", scope="S3", year=2021, s3_category="3")
    assert (total["emissions_t_co2e"], cat3["emissions_t_co2e"]) == (7_351_038.0, 7_350_511.0)
    assert set(df["s3_category"].dropna()) >= {"1", "2", "3", "6", "11", "4,9"}
    assert df[df["scope"] != "S3"]["s3_category"].isna().all()
    # s1 biogenic (3 rows) and other biogenic figures are not scope emissions
    assert reported_emissions.rejected["biogenic CO2 (outside the scopes under the GHG Protocol)"] == 53
    assert not df["metric_reported"].str.contains("biogenic").any()


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("s1+s2", "S1S2"),
        ("s1s2", "S1S2"),
        ("S1+S2", "S1S2"),
        ("s1+s2 ", "S1S2"),
        ("S1+S2+S3", "S1S2S3"),
        ("s1s3", "S1S3"),
        ("Scope 1 + 2", "S1S2"),
        ("s2 intensity", "S2"),
        ("s1 biogenic", None),
        ("production", None),
    ],
)
def test_canonical_scope(text: str, scope: str | None) -> None:
    assert emissions.canonical_scope(text) == scope


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("11", "11"),
        ("4, 9", "4,9"),
        ("Cat 6: Business travel", "6"),
        ("Upstream Transportation", "4"),
        ("Fuel- and energy-related activities not included in Scope 1&2", "3"),
        ("Emissions from the use of end-products (Category 11)", "11"),
        ("Other Categories (2,3,4,5,6,7,13)", "2,3,4,5,6,7,13"),
        ("Raw Materials", None),
    ],
)
def test_s3_category(text: str, category: str | None) -> None:
    assert emissions.s3_category(text) == category


def test_unknown_unit_is_counted_not_raised() -> None:
    raw = read_sample("emissions.csv").head(3)
    raw.loc[raw.index[0], "unit"] = "zorkmid CO2e"
    raw.loc[raw.index[1], "unit"] = "t Steel"  # a production unit in the emissions file
    cleaned = emissions.reported_emissions(raw)
    assert cleaned.rejected["unknown unit 'zorkmid CO2e'"] == 1
    assert cleaned.rejected["unit 't Steel' is not an emissions amount"] == 1
    assert len(cleaned.data) == 1


def test_production_canonical_units(production: Cleaned) -> None:
    df = production.data
    # production.csv lines 490-491: AES 2021 gross 72506.148 GWh (source_row 38), net 67920.775 GWh (39)
    aes = _one(df, company_id="US00130H1059", year=2021)
    assert (aes["value"], aes["unit"], aes["source_row"]) == (pytest.approx(67_920_775.0), "MWh", 39)
    # Asia Cement (TW0001102002) 2021: 36600 kt Cement
    cement = _one(df, company_id="TW0001102002", year=2021, unit="t Cement")
    assert cement["value"] == pytest.approx(36_600_000.0)
    # Black Hills gas segment 2021: 229198363 Mscf CH4 -> bcm
    gas = _one(df, company_id="US0921131092", year=2021, segment="Gas Utilities")
    assert gas["unit"] == "bcm CH4" and gas["value"] == pytest.approx(
        2.291984e8 * 28.316846592 / 1e9, rel=1e-6
    )
    assert set(df["unit"]) >= {"MWh", "boe", "bcm CH4", "t Steel", "t Cement", "pkm", "EUR", "USD", "JPY"}


def test_reported_intensities(emission_intensities: Cleaned) -> None:
    df = emission_intensities.data
    # emission_intensities.csv line 24: CRH s1s2s3 intensity 2015 = 622 kg CO2e per (t Cement), gross
    crh = _one(df, company_id="IE0001827041", scope="S1S2S3", year=2015)
    assert (crh["intensity"], crh["unit"]) == (pytest.approx(0.622), "t CO2e/(t Cement)")
    assert set(df["unit"]) <= {
        "t CO2e/(t Cement)",
        "t CO2e/(t Steel)",
        "t CO2e/MWh",
        "t CO2e/boe",
        "t CO2e/pkm",
    }


def test_targets(company_targets: Cleaned) -> None:
    df = company_targets.data
    assert len(df) == 226
    # CASIO (targets.csv line 229) has no base-year quantity; AstraZeneca line 213 is an "intensity" in t CO2e
    assert company_targets.rejected == {
        "missing target_base_year_qty": 1,
        "unit kind emissions does not match target_type intensity": 1,
    }
    # S1+S2 (93), "s1+s2 " with a trailing space (14), s1+s2 (1)
    assert (df["scope"] == "S1S2").sum() == 108
    travel = _one(df, source_row=215)  # Atlassian "scope 3-Business Travel"
    assert (travel["scope"], travel["s3_category"]) == ("S3", "6")
    goods = _one(df, source_row=216)  # "scope 3-+Purchased Goods and services, capital goods"
    assert (goods["scope"], goods["s3_category"]) == ("S3", "1,2")
    sk = _one(df, source_row=112)  # SK Innovation: 1243 myriametric_ton CO2e, ambition 0.230
    assert (sk["base_year_qty"], sk["unit"]) == (12_430_000.0, "t CO2e")
    assert sk["target_qty"] == pytest.approx(12_430_000 * (1 - 0.23008849557522126))
    cliffs = _one(df, source_row=25)  # Cleveland-Cliffs: t CO2e/Fe_ton
    assert cliffs["unit"] == "t CO2e/(t Steel)"
    bh = _one(df, source_row=18)  # Black Hills gas split: 11090 t CH4
    assert (bh["base_company_id"], bh["sector_split"]) == ("US0921131092", "Gas Utilities")
    assert bh["base_year_qty"] == pytest.approx(11090 * 28)
    assert df["reduction_ambition"].between(0, 1).all()
    assert df["lei"].isna().sum() == 36  # the "0" placeholders


def test_target_fractions_validated() -> None:
    raw = read_sample("targets.csv").head(4).copy()
    raw["target_reduction_ambition"] = [0.7, 1.5, -0.1, float("nan")]
    raw.loc[raw.index[0], "target_scope"] = "S4"
    cleaned = emissions.company_targets(raw)
    assert cleaned.rejected == {
        "unparseable target_scope": 1,
        "target_reduction_ambition missing or outside 0..1": 3,
    }
    assert cleaned.data.empty and list(cleaned.data.columns) == list(emissions.TARGET_COLUMNS)
