"""companies/market_data: the vendor's market data as a mesh product (Iceberg), one row per ISIN.

Reads what the legacy Airflow DAG ``companies_vendor_market_data`` publishes into the raw drop
(``vendor/market_data.csv``); the key ``companies/vendor_market_data`` comes from the
``companies_airflow`` code location, so this product is refreshed by the companies domain's trigger
sensor when that DAG (or its task migrated to Dagster) has published, like any upstream product.
"""

import dagster as dg

from mesh_assets.ingest.raw import RawInputs

VENDOR_FILE = "vendor/market_data.csv"


@dg.asset(key_prefix="companies", deps=[dg.AssetKey(["companies", "vendor_market_data"])])
def market_data(raw: RawInputs) -> dg.Output:
    """Market capitalisation and EVIC per ISIN in the vendor's currency, with the vendor's as-of date."""
    frame = raw.read_csv(
        VENDOR_FILE,
        required_columns=["isin", "company_name", "as_of_date", "currency"],
        numeric_columns=["market_cap", "evic"],
        dtype={"isin": "string", "company_name": "string", "currency": "string", "as_of_date": "string"},
    )
    frame = frame[["isin", "company_name", "as_of_date", "currency", "market_cap", "evic"]]
    return dg.Output(frame, metadata={"rows": len(frame), **raw.provenance(VENDOR_FILE)})
