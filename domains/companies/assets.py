"""Companies domain: the company master every other product joins on.

This module is imported when the code location loads, so it imports only Dagster and the platform:
the transforms (pandas, pint) are imported inside the asset, when it runs. For the same reason
DataFrame inputs and outputs are not annotated ``pd.DataFrame``: Dagster reads annotations at load
(an input without a type is read as a DataFrame by the IO manager).
"""

import dagster as dg

from mesh_assets.ingest.cleaning import cleaned_output
from mesh_assets.ingest.raw import RawInputs

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
def company_master(raw: RawInputs, country_regions) -> dg.Output:
    """One row per company: identifiers (ISIN, LEI), ISO-2 country, region, sector, EVIC and revenue in EUR."""
    from domains.companies import transforms

    path = "itr-sample/fundamentals.csv"
    cleaned = transforms.company_master(raw.read_csv(path, **FUNDAMENTALS), country_regions)
    return cleaned_output(cleaned, **raw.provenance(path))
