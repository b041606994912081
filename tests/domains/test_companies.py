"""Companies domain: the company master built from fundamentals.csv."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from domain_inputs import read_sample

from domains.companies import transforms as companies
from mesh_assets.ingest import identifiers
from mesh_assets.ingest.cleaning import Cleaned


def _row(cleaned: Cleaned, company_id: str) -> pd.Series:
    return cleaned.data.set_index("company_id").loc[company_id]


def test_one_row_per_company(company_master: Cleaned) -> None:
    df = company_master.data
    assert len(df) == 119  # fundamentals.csv has 119 rows, no repeated company_id
    assert df["company_id"].is_unique
    assert company_master.rejected_rows == 0
    assert str(df["report_date"].dtype) == "datetime64[us]"
    assert str(df["company_id"].dtype) == "string" and df["evic_eur"].dtype == "float64"


def test_mega_eur_eni_row(company_master: Cleaned) -> None:
    # fundamentals.csv, Eni S.P.A. - Group (IT0003132476): currency megaEUR, fx_quote EUR, fx_rate 1000000,
    # market_cap 44519, revenue 76575, evic 81325 (millions of EUR)
    eni = _row(company_master, "IT0003132476")
    assert eni["currency"] == "EUR" and eni["currency_reported"] == "megaEUR"
    assert eni["money_unit_scale"] == 1e6 and eni["fx_rate_to_eur"] == 1.0
    assert eni["market_cap_eur"] == pytest.approx(44_519e6)
    assert eni["revenue_eur"] == pytest.approx(76_575e6)
    assert eni["evic_eur"] == pytest.approx(81_325e6)
    # Eni - Plenitude & Power (IT0003132476-Power): market_cap 44100 megaEUR
    assert _row(company_master, "IT0003132476-Power")["market_cap_eur"] == pytest.approx(44_100e6)


def test_usd_row_uses_its_fx_rate(company_master: Cleaned) -> None:
    # fundamentals.csv, AES Corp. (US00130H1059): USD, fx_rate 0.94, market_cap 9420000000, evic 9681000000
    aes = _row(company_master, "US00130H1059")
    assert aes["currency"] == "USD" and aes["fx_rate_to_eur"] == 0.94
    assert aes["market_cap_eur"] == pytest.approx(9_420_000_000 * 0.94)
    assert aes["evic_eur"] == pytest.approx(9_681_000_000 * 0.94)
    # Kansai Electric Power (9503.T): JPY, fx_rate 0.0071, market_cap 1.18e12
    assert _row(company_master, "9503.T")["market_cap_eur"] == pytest.approx(1.18e12 * 0.0071)


def test_eur_row_without_fx_is_kept_at_par(company_master: Cleaned) -> None:
    # fundamentals.csv, ENGIE (FR0010208488): currency EUR, fx_quote and fx_rate empty, market_cap 3.887234e10
    engie = _row(company_master, "FR0010208488")
    assert engie["fx_rate_to_eur"] == 1.0
    assert engie["market_cap_eur"] == pytest.approx(3.887234e10)
    assert "fx_rate_missing_eur_implied" in engie["quality_flags"]


def test_country_names_normalised(company_master: Cleaned) -> None:
    assert _row(company_master, "GB0009887422")["country_iso2"] == "GB"  # Synthomer Plc: "Great Britain"
    assert _row(company_master, "CH0010645932")["country_iso2"] == "CH"  # Givaudan SA: "Switzerland"
    assert _row(company_master, "KR7051910008")["country_iso2"] == "KR"  # LG Chem Ltd: "South Korea"
    assert _row(company_master, "JE00B2419D89")["country_iso2"] == "GB"  # Breedon Group Plc: "UK"
    # Air Liquide SA (FR0000053951): country empty
    assert pd.isna(_row(company_master, "FR0000053951")["country_iso2"])
    assert company_master.data["country_iso2"].isna().sum() == 1


def test_missing_region_derived_from_country(company_master: Cleaned) -> None:
    # AES Corp. (US00130H1059): country US, region empty -> North America
    aes = _row(company_master, "US00130H1059")
    assert (aes["region"], aes["region_source"]) == ("North America", "derived_from_country")
    # Synthomer Plc (GB0009887422): "Great Britain", region empty -> Europe
    assert _row(company_master, "GB0009887422")["region"] == "Europe"
    # Breedon Group Plc (JE00B2419D89): region "Great Britain" is a country, not a region -> Europe
    breedon = _row(company_master, "JE00B2419D89")
    assert breedon["region"] == "Europe" and "region_invalid_replaced" in breedon["quality_flags"]
    # Saudi Aramco (2222.SR): SA -> Middle East -> ITR region Global
    assert _row(company_master, "2222.SR")["region"] == "Global"
    # Lafarge Maroc (MA0000012320): region "Africa" reported and kept
    assert _row(company_master, "MA0000012320")["region_source"] == "reported"
    # 33 regions were empty in fundamentals.csv, plus Breedon's invalid one
    assert (company_master.data["region_source"] == "derived_from_country").sum() == 34
    assert company_master.data["region"].notna().all()


def test_isin_only_for_valid_isins(company_master: Cleaned) -> None:
    assert pd.isna(_row(company_master, "9503.T")["isin"])  # ticker
    assert pd.isna(_row(company_master, "PETRONAS_SOE")["isin"])
    oil = _row(company_master, "IT0003132476-Oil")  # segment suffix: not an ISIN itself
    assert pd.isna(oil["isin"])
    assert (oil["base_company_id"], oil["segment"]) == ("IT0003132476", "Oil")
    assert _row(company_master, "US00130H1059")["isin"] == "US00130H1059"
    assert company_master.data["isin"].notna().sum() == 119 - 13


def test_isin_and_lei_check_digits() -> None:
    assert identifiers.is_valid_isin("US00130H1059")  # AES Corp.
    assert not identifiers.is_valid_isin("US00130H1058")  # same, wrong check digit
    assert not identifiers.is_valid_isin("US00130H105")
    assert identifiers.is_valid_lei("2NUNNB7D43COUIRE5295")  # AES Corp. LEI
    assert not identifiers.is_valid_lei("2NUNNB7D43COUIRE5296")
    assert identifiers.clean_lei("0") == (None, "lei_placeholder")  # targets.csv placeholder
    assert identifiers.clean_lei("Not Available") == (None, "lei_placeholder")  # Lafarge Maroc
    assert identifiers.clean_lei("2NUNNB7D43COUIRE5296") == (None, "lei_invalid")
    assert identifiers.clean_lei(float("nan")) == (None, None)


def test_lei_placeholders_in_master(company_master: Cleaned) -> None:
    lafarge = _row(company_master, "MA0000012320")  # company_lei "Not Available"
    assert pd.isna(lafarge["lei"]) and "lei_placeholder" in lafarge["quality_flags"]
    assert _row(company_master, "US00130H1059")["lei"] == "2NUNNB7D43COUIRE5295"
    assert company_master.data["lei"].notna().sum() == 119 - 18 - 1  # 18 missing + 1 placeholder


def test_non_positive_money_is_missing_and_flagged(company_master: Cleaned) -> None:
    # Lafarge Maroc (MA0000012320): market_cap 0, evic 0
    lafarge = _row(company_master, "MA0000012320")
    assert math.isnan(lafarge["market_cap_eur"]) and math.isnan(lafarge["evic_eur"])
    assert "evic_nonpositive" in lafarge["quality_flags"]


def test_duplicate_and_unusable_rows_are_counted(country_regions: Cleaned) -> None:
    fundamentals = read_sample("fundamentals.csv")
    aes = fundamentals[fundamentals["company_id"] == "US00130H1059"].copy()
    newer = aes.assign(report_date="2021-12-31", market_cap=1.0e10)
    no_id = aes.assign(company_id=None)
    cleaned = companies.company_master(pd.concat([fundamentals, newer, no_id]), country_regions.data)
    assert cleaned.rejected == {"duplicate company_id (latest report_date kept)": 1, "missing company_id": 1}
    assert len(cleaned.data) == 119
    assert _row(cleaned, "US00130H1059")["market_cap_eur"] == pytest.approx(1.0e10 * 0.94)


def test_unknown_currency_leaves_money_missing(country_regions: Cleaned) -> None:
    fundamentals = read_sample("fundamentals.csv").head(1).assign(currency="XYZ", fx_rate=2.0)
    row = companies.company_master(fundamentals, country_regions.data).data.iloc[0]
    assert math.isnan(row["market_cap_eur"]) and "currency_unknown" in row["quality_flags"].split("|")


def test_size_placeholders_are_missing_and_flagged(company_master: Cleaned) -> None:
    # fundamentals.csv, PETRONAS_SOE: market_cap, ev and evic are 1 (USD), a placeholder, not a size.
    row = _row(company_master, "PETRONAS_SOE")
    assert pd.isna(row["evic_eur"]) and pd.isna(row["market_cap_eur"]) and pd.isna(row["ev_eur"])
    assert {"market_cap_placeholder", "ev_placeholder", "evic_placeholder"} <= set(
        row["quality_flags"].split("|")
    )
    # a real size is untouched: AES Corp. EVIC 9,681,000,000 USD at 0.94
    assert _row(company_master, "US00130H1059")["evic_eur"] == pytest.approx(9_681_000_000 * 0.94)
