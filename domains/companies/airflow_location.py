"""The companies domain's legacy Airflow DAGs as a code location (companies_airflow in workspace.yaml).

What the DAGs publish and which tasks run in Dagster: ``airflow.yaml`` and ``legacy_market_data``.
"""

import dagster as dg

from domains.companies import legacy_market_data
from mesh_assets.airflow import airflow_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return airflow_definitions(legacy_market_data)
