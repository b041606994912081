"""The companies code location as it will be once ``market_data`` is wired in (see the Airflow report).

``domains/companies/definitions.py`` is the companies team's file; until it lists ``market_data``,
the Airflow bridging tests serve this location under the name ``companies``: the real companies
assets plus the product that reads what the legacy DAG publishes, built by the same platform
function, so it gets the real generated trigger sensor.
"""

import dagster as dg

from domains.companies import assets, market_data
from mesh_assets.definitions import domain_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return domain_definitions(assets, market_data)
