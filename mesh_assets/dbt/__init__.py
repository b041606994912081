"""dbt in the mesh: a domain's dbt project becomes assets and checks of its code location.

* ``manifest``: the project's manifest, prepared at build time (``mesh dbt prepare``) and read as
  JSON when a code location loads. Neither dbt nor dagster-dbt is imported then: together they
  cost more than the 2 s a code location may take to load.
* ``assets``: marts become assets keyed ``[domain, model]``; sources become the upstream asset
  keys of the publishing domains; dbt tests become asset checks.
* ``runtime``: at run time, dagster-dbt runs ``dbt build`` into the domain's staging schema
  (DuckDB in ``local``, Trino in ``lake``) and the platform publishes each model whose tests and
  contract passed to its Iceberg table, in one commit (``publish``).
* ``duckdb_plugin``: how dbt-duckdb reads the mesh's Iceberg tables as sources.
"""

from mesh_assets.dbt.assets import dbt_project_assets
from mesh_assets.dbt.manifest import DBT_PROJECTS_DIR, DbtNotPreparedError, domain_project_dir

__all__ = ["DBT_PROJECTS_DIR", "DbtNotPreparedError", "dbt_project_assets", "domain_project_dir"]
