"""Companies domain: the company master every other product joins on."""

import dagster as dg
import pandas as pd

from domains.companies import transforms
from mesh_assets.cleaning import cleaned_output
from mesh_assets.raw import RawInputs

DOMAIN = "companies"

FUNDAMENTALS = {
    "required_columns": [
        "company_name",
        "company_lei",
        "company_id",
        "country",
        "region",
        "sector",
        "currency",
    ],
    "numeric_columns": ["fx_rate", "market_cap", "revenue", "ev", "evic", "assets", "debt", "cash"],
}


@dg.asset(key_prefix=DOMAIN, ins={"country_regions": dg.AssetIn(key=["benchmarks", "country_regions"])})
def company_master(raw: RawInputs, country_regions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """One row per company: identifiers (ISIN, LEI), ISO-2 country, region, sector, EVIC and revenue in EUR."""
    path = "itr-sample/fundamentals.csv"
    cleaned = transforms.company_master(raw.read_csv(path, **FUNDAMENTALS), country_regions)
    return cleaned_output(cleaned, **raw.provenance(path))
