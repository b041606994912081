"""A domain's ``airflow.yaml``: which legacy DAGs it owns and the mesh asset keys their tasks publish.

::

    # domains/companies/airflow.yaml
    instance:
      name: companies_airflow          # prefixes the DAG assets: companies_airflow/dag/<dag_id>
      # url: https://airflow.example.com   # default: the local Airflow (MESH_HOST, MESH_PORT_AIRFLOW)
      # username: mesh                     # default: mesh
      # password_secret: airflow_password  # MESH_AIRFLOW_PASSWORD or $MESH_HOME/secrets/airflow_password
      version: auto                        # 2, 3 or auto (asked from the server)
    dags:
      companies_vendor_market_data:
        tasks:
          load_market_data: [companies/vendor_market_data_staged]
          publish_market_data: [companies/vendor_market_data]

Keys are the mesh's ``<domain>/<product>``: the same key another domain names in
``dg.AssetIn``/``deps`` to read what the legacy DAG publishes. A bad file stops the code location
with one sentence naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import yaml

CONFIG_FILE = "airflow.yaml"


class AirflowConfigError(ValueError):
    """A domain's airflow.yaml is missing or malformed."""


@dataclass(frozen=True)
class DagMapping:
    dag_id: str
    tasks: dict[str, list[dg.AssetKey]]


@dataclass(frozen=True)
class DomainAirflow:
    domain: str
    path: Path
    instance_name: str
    url: str | None = None
    username: str | None = None
    password_secret: str = "airflow_password"
    version: str | int | None = None
    dags: list[DagMapping] = field(default_factory=list)

    @property
    def keys(self) -> set[dg.AssetKey]:
        return {k for d in self.dags for keys in d.tasks.values() for k in keys}


def load_domain_airflow(domain: str, path: Path) -> DomainAirflow:
    """Parse and check ``path`` (a domain's airflow.yaml)."""
    if not path.is_file():
        raise AirflowConfigError(f"{path} does not exist: a domain with legacy DAGs declares them there")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AirflowConfigError(f"{path} is not valid YAML: {exc}") from None
    instance = raw.get("instance") or {}
    if not isinstance(instance, dict):
        raise AirflowConfigError(f"{path}: 'instance' must be a mapping (name, url, username, version)")
    dags_raw = raw.get("dags")
    if not isinstance(dags_raw, dict) or not dags_raw:
        raise AirflowConfigError(f"{path}: 'dags' must map at least one dag id to its tasks")
    dags = []
    for dag_id, spec in dags_raw.items():
        tasks_raw = (spec or {}).get("tasks") if isinstance(spec, dict) else None
        if not isinstance(tasks_raw, dict) or not tasks_raw:
            raise AirflowConfigError(f"{path}: dags.{dag_id}.tasks must map task ids to asset keys")
        tasks: dict[str, list[dg.AssetKey]] = {}
        for task_id, keys in tasks_raw.items():
            if isinstance(keys, str):
                keys = [keys]
            if not isinstance(keys, list) or not keys:
                raise AirflowConfigError(f"{path}: dags.{dag_id}.tasks.{task_id} must list asset keys")
            parsed = [dg.AssetKey(str(k).split("/")) for k in keys]
            foreign = [k.to_user_string() for k in parsed if len(k.path) != 2 or k.path[0] != domain]
            if foreign:
                raise AirflowConfigError(
                    f"{path}: dags.{dag_id}.tasks.{task_id} maps to {foreign}; a domain's DAG publishes "
                    f"only its own products, keyed {domain}/<product>"
                )
            tasks[str(task_id)] = parsed
        dags.append(DagMapping(str(dag_id), tasks))
    return DomainAirflow(
        domain=domain,
        path=path,
        instance_name=str(instance.get("name") or f"{domain}_airflow"),
        url=instance.get("url"),
        username=instance.get("username"),
        password_secret=str(instance.get("password_secret") or "airflow_password"),
        version=instance.get("version"),
        dags=dags,
    )
