"""The platform's own code location: the mesh exported to OpenMetadata after every publication.

Listed in ``workspace.yaml`` beside the domains. With ``MESH_OPENMETADATA_URL`` set, its sensor
starts an export run of its own after each published (check-passed) materialization; without it
the location holds only the export job, which says what to configure when launched.
"""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from mesh_assets.lineage.automation import lineage_definitions
    from mesh_assets.settings import get_settings  # a code location's load is an edge

    settings = get_settings()
    exported = lineage_definitions(
        settings, url=settings.openmetadata_url, interval=settings.trigger_interval
    )
    if settings.openmetadata_url:
        return exported
    return dg.Definitions(jobs=list(exported.jobs or []))
