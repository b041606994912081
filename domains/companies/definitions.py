"""The companies domain's code location: its assets, with everything else from the platform.

``market_data`` reads what the team's legacy Airflow DAG publishes (the ``companies_airflow``
location, ``airflow.yaml``); it runs once that DAG has published, triggered like any product.
"""

import dagster as dg

from domains.companies import assets, market_data
from mesh_assets.definitions import domain_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return domain_definitions(assets, market_data)
