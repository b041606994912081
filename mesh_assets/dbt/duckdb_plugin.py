"""dbt-duckdb plugin: a dbt source with ``meta: {plugin: mesh_iceberg}`` is read from the mesh's
Iceberg catalog (the active profile's, credentials from the environment) at its current snapshot.

DuckDB's own Iceberg extension is downloaded at run time from an extension repository; this plugin
reads through pyiceberg, the library the mesh already writes with, so nothing is fetched.
"""

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import SourceConfig

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import get_settings


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._settings = get_settings(plugin_config.get("profile"))

    def load(self, source_config: SourceConfig):
        identifier = (
            source_config.get("iceberg_table") or f"{source_config.schema}.{source_config.identifier}"
        )
        table = load_catalog(self._settings).load_table(identifier)
        return table.scan().to_arrow()
