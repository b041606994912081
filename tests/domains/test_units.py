"""mesh_assets.ingest.units: parsing the unit strings of the ITR sample and converting to canonical units."""

from __future__ import annotations

import math

import pytest

from mesh_assets.ingest import units


@pytest.mark.parametrize(
    ("value", "unit", "expected_t"),
    [
        # emissions.csv source_row 1041: Saudi Aramco (2222.SR) s1 2019 = 52 Mt CO2e
        (52.0, "Mt CO2e", 52_000_000.0),
        # emissions.csv source_row 1883: Covestro (DE0006062144) s1 2016 = 2.33 Millions t CO2e
        (2.33, "Millions t CO2e", 2_330_000.0),
        # emissions.csv source_row 1139: Tokyo Electric Power (9501.T) s1 2018 = 81604 kt CO2e
        (81604.0, "kt CO2e", 81_604_000.0),
        # emissions.csv source_row 2039: Tokai Carbon (JP3560800009) s1 2018 = 2430 thousand t CO2e
        (2430.0, "thousand t CO2e", 2_430_000.0),
        # targets.csv uses myriametric_ton CO2e (10 000 t)
        (3.0, "myriametric_ton CO2e", 30_000.0),
        # t CO2 is counted as t CO2e (BMW scope-3 rows, emissions.csv source_row 234)
        (15391154.0, "t CO2", 15391154.0),
        # emissions.csv source_row 147: Black Hills fugitive methane 10984 t CH4 x GWP100 (AR5) 28
        (10984.0, "t CH4", 10984.0 * 28),
    ],
)
def test_emissions_to_tonnes(value: float, unit: str, expected_t: float) -> None:
    assert units.to_t_co2e(value, unit) == pytest.approx(expected_t)
    assert units.canonical_unit(unit) == "t CO2e"


def test_intensity_spelling_variants_are_the_same_unit() -> None:
    # emission_intensities.csv has both spellings for cement companies
    assert units.unit_info("kg CO2e per (t Cement)") == ("intensity", "t CO2e/(t Cement)")
    assert units.conversion_factor("kg CO2e per (t Cement)") == pytest.approx(0.001)
    assert units.conversion_factor("kg CO2e/(t Cement)") == pytest.approx(0.001)
    assert units.canonical_unit("t CO2e / (t Steel)") == units.canonical_unit("t CO2e/(t Steel)")
    assert units.canonical_unit("t CO2e/Fe_ton") == "t CO2e/(t Steel)"
    assert units.conversion_factor("lb CO2e/MWh") == pytest.approx(0.45359237e-3)
    assert units.conversion_factor("g CO2e/kWh") == pytest.approx(1e-3)
    assert units.canonical_unit("g CO2e/(passenger km)") == "t CO2e/pkm"


@pytest.mark.parametrize(
    ("unit", "canonical", "factor"),
    [
        ("TWh", "MWh", 1e6),
        ("GWh", "MWh", 1e3),
        ("mmboe", "boe", 1e6),
        ("mboe", "boe", 1e3),  # oil-industry M = thousand, not milli
        ("kboe", "boe", 1e3),
        ("MMbbl", "boe", 1e6),
        ("kbbl/d", "boe", 1e3 * 365.25),  # a daily rate is annualised
        ("PJ", "boe", 1e6 / 6.1178632),
        ("bcm CH4", "bcm CH4", 1.0),
        ("MMscf CH4", "bcm CH4", 0.028316846592 * 1e-3),
        ("bscf", "bcm CH4", 0.028316846592),  # bare gas volume is natural gas
        ("kt Cement", "t Cement", 1e3),  # kt is a kilotonne, not a knot
        ("myriat Steel", "t Steel", 1e4),
        ("Mpassenger mile", "pkm", 1.609344e6),
        ("M€", "EUR", 1e6),
        ("megaEUR", "EUR", 1e6),
        ("JPY Billions", "JPY", 1e9),
        ("Thousands EUR", "EUR", 1e3),
        ("ft**2", "m**2", 0.09290304),
    ],
)
def test_production_units(unit: str, canonical: str, factor: float) -> None:
    assert units.canonical_unit(unit) == canonical
    assert units.conversion_factor(unit) == pytest.approx(factor)


def test_unknown_unit_raises_value_error_naming_the_unit() -> None:
    with pytest.raises(ValueError, match="zorkmid"):
        units.canonical_unit("zorkmid CO2e")
    with pytest.raises(ValueError, match="t Steel"):
        units.conversion_factor("t Steel", "t Cement")  # commodities never mix
    with pytest.raises(ValueError, match="EUR"):
        units.conversion_factor("EUR", "USD")  # currencies need an explicit FX rate
    with pytest.raises(ValueError):
        units.canonical_unit("")


def test_benchmark_unit_strings() -> None:
    assert units.conversion_factor("Mt CO2e/(bcm CH4)") == pytest.approx(1e6)
    assert units.conversion_factor("t CO2e/(million m**2)") == pytest.approx(1e-6)
    assert units.conversion_factor("t CO2e/TJ") == pytest.approx(6.1178632e-3)
    # the TPI autos files carry a truncated description instead of a unit
    assert (
        units.canonical_unit("verage new vehicle emissions (grams of CO2 per kilometre [NEDC]")
        == "t CO2e/vkm"
    )
    assert units.parse_quantity("1869.6 Fe * megametric_ton") == (pytest.approx(1.8696e9), "t Steel")
    assert units.parse_quantity("396 Gt CO2") == (pytest.approx(396e9), "t CO2e")


def test_convert_passes_nan_through() -> None:
    assert math.isnan(units.convert(float("nan"), "kt CO2e"))
    assert units.get_registry() is units.get_registry()  # one cached registry
