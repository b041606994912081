"""Airflow bridging: a domain's legacy DAGs observed, migrated task by task, and run from the mesh.

* :mod:`.observe`: ``airflow_definitions(module)``, the code location of a domain's DAGs
  (dagster-airlift), from ``domains/<domain>/airflow.yaml``;
* :mod:`.trigger`: run a DAG from the mesh and wait, one sentence when it cannot;
* :mod:`.connection`: URL, credentials and version of an Airflow (2 or 3);
* :mod:`.v3`: the Airflow 3 adapter on airlift's extension points (decision 0006).

This package imports only Dagster at module level; dagster-airlift and requests load when a
location is built or a DAG is triggered.
"""

from mesh_assets.airflow.config import AirflowConfigError, DomainAirflow, load_domain_airflow
from mesh_assets.airflow.connection import (
    AirflowBridgeError,
    AirflowConnection,
    AirflowCredentialsRejected,
    AirflowUnreachable,
    DagNotRunnable,
)
from mesh_assets.airflow.observe import airflow_definitions, build_airflow_definitions
from mesh_assets.airflow.trigger import dag_trigger_job, trigger_and_wait

__all__ = [
    "AirflowBridgeError",
    "AirflowConfigError",
    "AirflowConnection",
    "AirflowCredentialsRejected",
    "AirflowUnreachable",
    "DagNotRunnable",
    "DomainAirflow",
    "airflow_definitions",
    "build_airflow_definitions",
    "dag_trigger_job",
    "load_domain_airflow",
    "trigger_and_wait",
]
