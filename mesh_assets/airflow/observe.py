"""A domain's legacy Airflow DAGs as a Dagster code location, built with dagster-airlift.

``domains/<domain>/airflow.yaml`` names the DAGs and the mesh asset keys each task publishes
(:mod:`mesh_assets.airflow.config`). :func:`airflow_definitions` turns that into:

* one asset per mapped key (``assets_with_task_mappings``): a plain spec, or, for a task the domain
  has rewritten as a Dagster asset (an asset with that key in the modules passed in), that
  executable asset, which Airflow runs through airlift's proxy operator once the task is marked
  ``proxied: true`` in the DAG's ``proxied_state`` yaml;
* one asset per DAG (``<instance>/dag/<dag_id>``), downstream of its tasks' assets, with its source;
* airlift's polling sensor (``<instance>__airflow_dag_status_sensor``, every
  ``MESH_TRIGGER_INTERVAL`` s): each successful DAG run becomes materializations of the mapped keys
  in the event log. They are runless, so the cross-domain triggers
  (:mod:`mesh_assets.orchestration.automation`) count them as published, like any product;
* a job per DAG, ``<dag_id>__run_in_airflow``, that triggers it and waits (:mod:`.trigger`).

The location is separate from the domain's own, so its products reach the domain's other products
through the same cross-location path (an external key, the generated sensor) as another domain's.
Loading it asks Airflow for its DAGs once (airlift keeps that state for run workers).

**Airflow unreachable when the location loads** (not started yet, a network outage): the location
still loads, from ``airflow.yaml`` alone: the same mapped assets and jobs, one asset per DAG that
says Airflow was unreachable, and in place of airlift's sensor one of the same name whose ticks say
whether Airflow answers again (then: reload the location). The mesh's lineage and the products
downstream stay visible, and nothing pretends to have observed a run. Wrong credentials or a DAG
Airflow does not have still stop the location: those are for the team to fix, not to wait out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import dagster as dg

from mesh_assets.airflow.config import (
    CONFIG_FILE,
    AirflowConfigError,
    DagMapping,
    DomainAirflow,
    load_domain_airflow,
)
from mesh_assets.airflow.connection import (
    AirflowBridgeError,
    AirflowConnection,
    AirflowCredentialsRejected,
    AirflowUnreachable,
    local_url,
)
from mesh_assets.airflow.trigger import dag_trigger_job
from mesh_assets.orchestration.runner import AIRFLOW_DAG_TAG
from mesh_assets.settings import MeshSettings, get_settings
from mesh_assets.workspace import domain_of


def connection_for(config: DomainAirflow, settings: MeshSettings) -> AirflowConnection:
    """The connection the domain's airflow.yaml describes, the password from the settings' secrets."""
    return AirflowConnection.from_settings(
        settings,
        url=config.url,
        username=config.username,
        password_secret=config.password_secret,
        version=config.version,
    )


def _mapped_assets(
    config: DomainAirflow, executable: dict[dg.AssetKey, dg.AssetsDefinition], *, airlift: bool = True
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """One asset per mapped key, governed; with ``airlift``, carrying airlift's task mapping (what
    its sensor and proxy read), without it (Airflow away) plain, and dagster-airlift not imported."""
    out: list[dg.AssetsDefinition | dg.AssetSpec] = []
    for dag in config.dags:
        mapping: dict[str, list[dg.AssetsDefinition | dg.AssetSpec]] = {}
        for task_id, keys in dag.tasks.items():
            items: list[dg.AssetsDefinition | dg.AssetSpec] = []
            for key in keys:
                if key in executable:
                    if executable[key] not in items:
                        items.append(executable[key])
                else:
                    items.append(dg.AssetSpec(key))
            mapping[task_id] = items
        if airlift:
            from dagster_airlift.core import assets_with_task_mappings

            out.extend(assets_with_task_mappings(dag_id=dag.dag_id, task_mappings=mapping))
        else:
            out.extend(item for items in mapping.values() for item in items if item not in out)
    unmapped = sorted(k.to_user_string() for k in executable if k not in config.keys)
    if unmapped:
        raise AirflowConfigError(
            f"{config.path}: the Dagster assets {unmapped} map to no Airflow task; list each under "
            "dags.<dag_id>.tasks.<task_id>"
        )
    return list(dg.map_asset_specs(lambda s: _governed(s, config), out))


def _governed(spec: dg.AssetSpec, config: DomainAirflow) -> dg.AssetSpec:
    dag_ids = sorted({d.dag_id for d in config.dags for keys in d.tasks.values() if spec.key in keys})
    tags = {"mesh/domain": config.domain}
    if dag_ids:
        tags[AIRFLOW_DAG_TAG] = dag_ids[0]
    return spec.merge_attributes(kinds={"airflow"}, tags=tags)


def airflow_definitions(*modules: ModuleType, settings: MeshSettings | None = None) -> dg.Definitions:
    """:func:`build_airflow_definitions` for the domain the modules' package is named after."""
    if not modules:
        raise AirflowConfigError("airflow_definitions needs the domain's module(s) (for its airflow.yaml)")
    return build_airflow_definitions(domain_of(modules[0]), *modules, settings=settings)


def build_airflow_definitions(
    domain: str,
    *modules: ModuleType,
    settings: MeshSettings | None = None,
    config_path: Path | None = None,
) -> dg.Definitions:
    """The code location of ``domain``'s legacy DAGs (see the module docstring)."""
    from mesh_assets.ingest.raw import RawInputs

    resolved: MeshSettings = settings or get_settings()
    if config_path is None:
        if not modules or not getattr(modules[0], "__file__", None):
            raise AirflowConfigError(
                f"pass config_path or a module of domains/{domain}/ to find {CONFIG_FILE}"
            )
        config_path = Path(str(modules[0].__file__)).parent / CONFIG_FILE
    config = load_domain_airflow(domain, config_path)
    try:
        connection = connection_for(config, resolved)
    except AirflowCredentialsRejected:
        # no password yet (Airflow never started here): offline if the server does not answer either
        url = (config.url or local_url(resolved)).rstrip("/")
        try:
            AirflowConnection(url=url, username="", password="").detect()
        except AirflowUnreachable:
            connection = AirflowConnection(url=url, username="", password="")
            unreachable = True
        else:
            raise
    else:
        try:  # asks the server its version (no credentials): an Airflow that is down says so here
            connection = connection.detect()
            unreachable = False
        except AirflowUnreachable:
            unreachable = True
    executable = {
        key: a
        for a in dg.load_assets_from_modules(modules, group_name=f"{domain}_airflow")
        if isinstance(a, dg.AssetsDefinition)
        for key in a.keys
    }
    dag_ids = {d.dag_id for d in config.dags}
    jobs: Sequence[dg.JobDefinition] = [
        dag_trigger_job(d, lambda: connection_for(config, resolved), domain=domain) for d in sorted(dag_ids)
    ]
    resources = {"raw": RawInputs(root=str(resolved.raw_dir))}
    if unreachable:
        return _offline_definitions(config, connection, executable, jobs, resources, resolved)
    from dagster_airlift.core import build_defs_from_airflow_instance
    from dagster_airlift.core.filter import AirflowFilter

    mapped = _mapped_assets(config, executable)
    try:
        instance = connection.instance(config.instance_name)
        defs = build_defs_from_airflow_instance(
            airflow_instance=instance,
            # migrated tasks read and publish raw drops; they write no Iceberg table themselves
            defs=dg.Definitions(assets=mapped, jobs=jobs, resources=resources),
            sensor_minimum_interval_seconds=resolved.trigger_interval,
            dag_selector_fn=lambda dag: dag.dag_id in dag_ids,
            # the mapping is the domain's yaml; airlift would key datasets by their file name only
            retrieval_filter=AirflowFilter(retrieve_datasets=False),
            source_code_retrieval_enabled=True,
        )
    except AirflowUnreachable:
        return _offline_definitions(config, connection, executable, jobs, resources, resolved)
    except AirflowBridgeError:
        raise
    except Exception as exc:
        # name the real cause (down, credentials) in one sentence, else keep airlift's error
        try:
            connection.check(config.instance_name)
        except AirflowUnreachable:
            return _offline_definitions(config, connection, executable, jobs, resources, resolved)
        raise AirflowBridgeError(
            f"building the Airflow location of {domain} from {connection.url} failed: {exc}"
        ) from exc
    missing = sorted(dag_ids - _dags_in(defs, config.instance_name))
    if missing:
        raise AirflowConfigError(
            f"{config.path} names DAG(s) {missing} that Airflow at {connection.url} does not have: "
            "check the dag ids, and Airflow's import errors if the file did not parse"
        )
    return defs


def _task_keys(dag: DagMapping) -> list[dg.AssetKey]:
    keys: set[dg.AssetKey] = {k for keys in dag.tasks.values() for k in keys}
    return sorted(keys, key=lambda k: k.to_user_string())


def status_sensor_name(instance_name: str) -> str:
    """airlift's polling sensor of an Airflow instance (and its stand-in while Airflow is away)."""
    return f"{instance_name}__airflow_dag_status_sensor"


def _offline_definitions(
    config: DomainAirflow,
    connection: AirflowConnection,
    executable: dict[dg.AssetKey, dg.AssetsDefinition],
    jobs: Sequence[dg.JobDefinition],
    resources: dict,
    settings: MeshSettings,
) -> dg.Definitions:
    """The location from ``airflow.yaml`` alone, while Airflow does not answer (module docstring)."""
    instance = config.instance_name
    mapped = _mapped_assets(config, executable, airlift=False)
    dg.get_dagster_logger().warning(
        f"{instance}: Airflow at {connection.url} did not answer; loaded from {config.path.name} alone "
        "(its DAG runs are observed once the location is reloaded with Airflow up)"
    )
    dags = [
        dg.AssetSpec(
            [instance, "dag", dag.dag_id],
            deps=_task_keys(dag),
            description=(
                f"The Airflow DAG {dag.dag_id}. Airflow at {connection.url} did not answer when this "
                "code location loaded; reload the location once it runs (`mesh infra up airflow` "
                "starts the local one) to observe the DAG's runs. Its sensor's ticks say why."
            ),
            kinds={"airflow"},
            tags={"mesh/domain": config.domain, AIRFLOW_DAG_TAG: dag.dag_id},
            metadata={"airflow/url": connection.url, "airflow/reachable": False},
        )
        for dag in config.dags
    ]

    @dg.sensor(
        name=status_sensor_name(instance),
        minimum_interval_seconds=max(settings.trigger_interval, 30),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Stands in for the Airflow status sensor while Airflow at {connection.url} is unreachable: "
            "each tick says whether it answers again."
        ),
    )
    def airflow_unreachable() -> dg.SkipReason:
        try:  # the password may have been created since the location loaded
            connection_for(config, settings).check(instance)
        except AirflowBridgeError as exc:
            return dg.SkipReason(f"{exc} (DAG runs are not observed until then)")
        return dg.SkipReason(
            f"Airflow at {connection.url} answers now: reload the code location of {config.domain}'s "
            "DAGs (Deployment > Code locations > Reload in the UI) to observe its runs"
        )

    return dg.Definitions(
        assets=[*mapped, *dags], jobs=list(jobs), sensors=[airflow_unreachable], resources=resources
    )


def _dags_in(defs: dg.Definitions, instance_name: str) -> set[str]:
    found = set()
    for a in defs.assets or []:
        if isinstance(a, dg.AssetsDefinition):
            specs = list(a.specs)
        elif isinstance(a, dg.AssetSpec):
            specs = [a]
        else:  # a cacheable definition has no keys until it is resolved
            continue
        for spec in specs:
            path = spec.key.path
            if len(path) == 3 and path[0] == instance_name and path[1] == "dag":
                found.add(path[2])
    return found
