"""Session fixtures for the domain transforms: the real OS-Climate ITR sample inputs and their cleaned products.

Every product is computed once per test session from the files in data/raw (no lake, no Dagster), so the
domain tests stay fast and deterministic.
"""

from __future__ import annotations

import pandas as pd
import pytest
from domain_inputs import BENCHMARK_ID, read_bench_csv, read_bench_json, read_sample

from domains.benchmarks import transforms as benchmarks
from domains.companies import transforms as companies
from domains.emissions import transforms as emissions
from domains.portfolio_alignment import transforms as portfolio
from mesh_assets.ingest.cleaning import Cleaned


@pytest.fixture(scope="session")
def country_regions() -> Cleaned:
    return benchmarks.country_regions(
        read_bench_csv("country_region_info.csv"),
        read_bench_csv("region_classification.csv"),
        read_bench_csv("oecd_iso.csv"),
    )


@pytest.fixture(scope="session")
def company_master(country_regions: Cleaned) -> Cleaned:
    return companies.company_master(read_sample("fundamentals.csv"), country_regions.data)


@pytest.fixture(scope="session")
def raw_emissions() -> pd.DataFrame:
    return read_sample("emissions.csv")


@pytest.fixture(scope="session")
def reported_emissions(raw_emissions: pd.DataFrame) -> Cleaned:
    return emissions.reported_emissions(raw_emissions)


@pytest.fixture(scope="session")
def production() -> Cleaned:
    return emissions.production(read_sample("production.csv"))


@pytest.fixture(scope="session")
def emission_intensities() -> Cleaned:
    return emissions.emission_intensities(read_sample("emission_intensities.csv"))


@pytest.fixture(scope="session")
def company_targets() -> Cleaned:
    return emissions.company_targets(read_sample("targets.csv"))


@pytest.fixture(scope="session")
def intensity_pathways() -> Cleaned:
    return benchmarks.intensity_pathways(
        read_bench_json(benchmarks.BENCHMARK_FILES[BENCHMARK_ID]), BENCHMARK_ID
    )


@pytest.fixture(scope="session")
def portfolio_holdings() -> Cleaned:
    return portfolio.portfolio_holdings(read_sample("portfolio.csv"))


@pytest.fixture(scope="session")
def company_scores(
    company_master: Cleaned,
    reported_emissions: Cleaned,
    production: Cleaned,
    company_targets: Cleaned,
    intensity_pathways: Cleaned,
) -> Cleaned:
    return portfolio.company_temperature_scores(
        company_master.data,
        reported_emissions.data,
        production.data,
        company_targets.data,
        intensity_pathways.data,
        BENCHMARK_ID,
    )


@pytest.fixture(scope="session")
def portfolio_score(portfolio_holdings: Cleaned, company_scores: Cleaned, company_master: Cleaned) -> Cleaned:
    return portfolio.portfolio_temperature_score(
        portfolio_holdings.data, company_scores.data, company_master.data
    )
