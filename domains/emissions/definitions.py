"""The emissions domain's code location: its assets, with everything else from the platform."""

import dagster as dg

from domains.emissions import assets
from mesh_assets.definitions import domain_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return domain_definitions(assets)
