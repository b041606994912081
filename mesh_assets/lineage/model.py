"""The mesh as plain data: what the catalog export publishes, read from the workspace's Dagster definitions.

The exporter never asks the code locations' servers: it loads each code location's ``Definitions``
in-process, by the module ``workspace.yaml`` names, the way ``dagster dev`` does. A location whose
``defs`` is a ``@dg.definitions`` function is called. The model is independent of OpenMetadata
(``openmetadata.py`` maps it) so it can be built and compared without importing the SDK, and a
synthetic mesh (benchmarks) can be made without any code location.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_assets.orchestration.runner import AIRFLOW_DAG_TAG
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import WorkspaceError, definitions_of, locations

Key = tuple[str, ...]
CONTRACT_CHECK = "contract"


class MeshModelError(ValueError):
    """The workspace cannot be read into a mesh model; the message names the location and why."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # Iceberg type name, as in the contract
    description: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Product:
    """One published asset: a table of the lake, owned by a domain, produced by a code location."""

    key: Key
    location: str
    description: str | None
    owners: tuple[str, ...]
    columns: tuple[ColumnInfo, ...]
    source: str  # "dbt" or "pipeline"
    sql: str | None = None  # compiled SQL of a dbt model
    contract_path: str | None = None
    contract_version: str | None = None
    contract_status: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def domain(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return "__".join(self.key[1:])

    @property
    def label(self) -> str:
        return "/".join(self.key)


@dataclass(frozen=True)
class Edge:
    """An asset dependency: ``upstream`` feeds ``downstream``, which ``pipeline`` (a location) produces."""

    upstream: Key
    downstream: Key
    pipeline: str
    source: str  # "dbt" or "pipeline"
    sql: str | None = None
    # (downstream column, ((upstream key, upstream column), ...)) restricted to this edge's upstream
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class CheckResult:
    key: Key
    check: str
    passed: bool
    timestamp: float  # seconds
    run_id: str
    description: str = ""


@dataclass(frozen=True)
class RunStatus:
    location: str
    run_id: str
    status: str  # Dagster run status value
    start: float
    end: float | None
    tasks: tuple[Key, ...]


@dataclass(frozen=True)
class MeshModel:
    products: tuple[Product, ...]
    edges: tuple[Edge, ...]
    locations: Mapping[str, tuple[Key, ...]]  # location -> the assets it produces
    checks: tuple[CheckResult, ...] = ()
    runs: tuple[RunStatus, ...] = ()
    external: tuple[Key, ...] = field(default=())  # upstream keys no location produces

    @property
    def domains(self) -> list[str]:
        return sorted({p.domain for p in self.products})

    def product(self, key: Key) -> Product:
        return self._by_key[key]

    @property
    def _by_key(self) -> dict[Key, Product]:
        return {p.key: p for p in self.products}

    def graph(self) -> tuple[set[Key], set[tuple[Key, Key]]]:
        """Nodes and edges, for comparison with the Dagster asset graph and what a server returns."""
        return {p.key for p in self.products}, {(e.upstream, e.downstream) for e in self.edges}


# ---- loading the workspace -------------------------------------------------------------------


def workspace_locations(workspace: Path) -> list[tuple[str, str]]:
    """(location name, module) of every code location of ``workspace`` (see ``mesh_assets.workspace``)."""
    try:
        found = locations(Path(workspace))
    except WorkspaceError as exc:
        raise MeshModelError(str(exc)) from None
    if not found:
        raise MeshModelError(f"{workspace} names no code location (load_from is empty)")
    return [(loc.name, loc.module_name) for loc in found]


def load_location_definitions(module_name: str, attribute: str = "defs") -> dg.Definitions:
    """A code location's ``Definitions``, as its code server loads them (``@dg.definitions`` resolved)."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise MeshModelError(f"code location module {module_name} does not import: {exc}") from exc
    try:
        return definitions_of(module, attribute)
    except WorkspaceError as exc:
        raise MeshModelError(str(exc)) from None


def _columns(metadata: Mapping[str, Any]) -> tuple[ColumnInfo, ...]:
    schema = metadata.get("dagster/column_schema")
    schema = getattr(schema, "schema", schema)  # TableSchemaMetadataValue or TableSchema
    if schema is None:
        return ()
    return tuple(
        ColumnInfo(
            name=c.name,
            type=str(c.type),
            description=c.description or None,
            required=not c.constraints.nullable if c.constraints else False,
        )
        for c in schema.columns
    )


def _path_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "path", value))


def _declared_column_lineage(metadata: Mapping[str, Any]) -> dict[str, tuple[tuple[Key, str], ...]]:
    """``dagster/column_lineage`` (a TableColumnLineage) as ``{column: ((upstream key, column), ...)}``."""
    value = metadata.get("dagster/column_lineage")
    value = getattr(value, "column_lineage", value)
    deps_by_column = getattr(value, "deps_by_column", None) or {}
    return {
        column: tuple((tuple(d.asset_key.path), d.column_name) for d in deps)
        for column, deps in deps_by_column.items()
    }


def build_model(
    settings: MeshSettings,
    workspace: Path | None = None,
    *,
    definitions: Mapping[str, dg.Definitions] | None = None,
    with_instance: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> MeshModel:
    """The mesh of ``workspace`` (or of ``definitions``, location name -> Definitions).

    Column lineage of dbt models comes from the prepared manifests (``mesh dbt prepare``); the
    latest contract check results and run statuses from ``instance`` (default: the Dagster
    instance of ``settings``, if it exists) when ``with_instance``.
    """
    from mesh_assets.lineage import columns as column_lineage

    if definitions is None:
        workspace = Path(workspace or REPO_ROOT / "workspace.yaml")
        definitions = {
            name: load_location_definitions(module) for name, module in workspace_locations(workspace)
        }
    products: dict[Key, Product] = {}
    parents: dict[Key, tuple[Key, ...]] = {}
    declared: dict[Key, dict[str, tuple[tuple[Key, str], ...]]] = {}
    dbt_nodes: dict[Key, tuple[str, str]] = {}
    locations: dict[str, tuple[Key, ...]] = {}
    for location, defs in definitions.items():
        graph = defs.resolve_asset_graph()
        produced = []
        for asset_key in sorted(graph.get_all_asset_keys(), key=lambda k: tuple(k.path)):
            node = graph.get(asset_key)
            # a legacy Airflow DAG's outputs are its files, not lake tables: OpenMetadata's own
            # Airflow connector catalogs them, and a product reading one shows it as external
            if not node.is_materializable or AIRFLOW_DAG_TAG in (node.tags or {}):
                continue
            key = tuple(asset_key.path)
            if key in products:
                raise MeshModelError(
                    f"asset {asset_key.to_user_string()} is produced by two code locations: "
                    f"{products[key].location} and {location}"
                )
            metadata = node.metadata or {}
            is_dbt = "dbt" in (node.kinds or set()) or "mesh/dbt_model" in metadata
            tags = node.tags or {}
            products[key] = Product(
                key=key,
                location=location,
                description=node.description,
                owners=tuple(node.owners or ()),
                columns=_columns(metadata),
                source="dbt" if is_dbt else "pipeline",
                contract_path=_path_value(metadata.get("mesh/contract")),
                contract_version=tags.get("mesh/contract_version"),
                contract_status=tags.get("mesh/contract_status"),
                tags=tuple(sorted(k for k in node.kinds or ())),
            )
            parents[key] = tuple(sorted(tuple(p.path) for p in node.parent_keys))
            declared[key] = _declared_column_lineage(metadata)
            if is_dbt and metadata.get("mesh/dbt_model") and metadata.get("mesh/dbt_sql"):
                dbt_nodes[key] = (
                    str(metadata["mesh/dbt_model"]),
                    _path_value(metadata["mesh/dbt_sql"]) or "",
                )
            produced.append(key)
        if produced:  # a location without assets (e.g. the platform's jobs and sensors) is no pipeline
            locations[location] = tuple(produced)

    # dbt models: compiled SQL and column lineage from the prepared manifests
    dbt_lineage: dict[Key, dict[str, tuple[tuple[Key, str], ...]]] = {}
    for key, (unique_id, sql_path) in dbt_nodes.items():
        compiled = column_lineage.compile_model(unique_id, sql_path, settings)
        upstream_columns = {
            parent: [c.name for c in products[parent].columns]
            for parent in parents[key]
            if parent in products
        }
        dbt_lineage[key] = column_lineage.sql_column_lineage(
            compiled, [c.name for c in products[key].columns], upstream_columns, settings.trino_catalog
        )
        products[key] = _replace(products[key], sql=compiled)

    edges = []
    external: set[Key] = set()
    for key, ups in parents.items():
        product = products[key]
        lineage = dbt_lineage.get(key) or declared.get(key) or {}
        for up in ups:
            if up not in products:
                external.add(up)
                continue
            columns = tuple(
                (column, tuple(sorted(c for k, c in sources if k == up)))
                for column, sources in sorted(lineage.items())
                if any(k == up for k, _ in sources)
            )
            edges.append(
                Edge(
                    upstream=up,
                    downstream=key,
                    pipeline=product.location,
                    source=product.source,
                    sql=product.sql,
                    columns=columns,
                )
            )
    checks: tuple[CheckResult, ...] = ()
    runs: tuple[RunStatus, ...] = ()
    if with_instance:
        checks, runs = instance_state(settings, locations, instance)
    return MeshModel(
        products=tuple(sorted(products.values(), key=lambda p: p.key)),
        edges=tuple(sorted(edges, key=lambda e: (e.downstream, e.upstream))),
        locations=locations,
        checks=checks,
        runs=runs,
        external=tuple(sorted(external)),
    )


def _replace(product: Product, **changes: Any) -> Product:
    from dataclasses import replace

    return replace(product, **changes)


# ---- the Dagster instance: latest contract checks and runs ------------------------------------


def instance_state(
    settings: MeshSettings, locations: Mapping[str, Iterable[Key]], instance: dg.DagsterInstance | None = None
) -> tuple[tuple[CheckResult, ...], tuple[RunStatus, ...]]:
    """Latest ``contract`` check evaluation per product and latest run per location.

    Reads the instance at ``settings.dagster_home`` (or ``instance``); an instance that was never
    created has no results, which is not an error (nothing ran yet).
    """
    if instance is None:
        home = Path(settings.dagster_home)
        if not (home / "dagster.yaml").exists() and not (home / "storage").exists():
            return (), ()
        with dg.DagsterInstance.from_config(str(home)) as opened:
            return instance_state(settings, locations, opened)
    checks = []
    runs = []
    for location, keys in sorted(locations.items()):
        latest_run: tuple[float, str] | None = None
        for key in keys:
            asset_key = dg.AssetKey(list(key))
            record = instance.get_latest_asset_check_evaluation_record(
                dg.AssetCheckKey(asset_key, CONTRACT_CHECK)
            )
            if record is not None and record.event is not None and record.event.dagster_event is not None:
                data = record.event.dagster_event.event_specific_data
                if isinstance(data, dg.AssetCheckEvaluation):
                    checks.append(
                        CheckResult(
                            key=key,
                            check=CONTRACT_CHECK,
                            passed=bool(data.passed),
                            timestamp=record.event.timestamp,
                            run_id=record.run_id,
                            description=data.description or "",
                        )
                    )
            materializations = instance.fetch_materializations(asset_key, limit=1).records
            if materializations and materializations[0].event_log_entry.run_id:
                stamp = (materializations[0].timestamp, materializations[0].event_log_entry.run_id)
                latest_run = max(latest_run, stamp) if latest_run else stamp
        if latest_run is None:
            continue
        run_record = instance.get_run_record_by_id(latest_run[1])
        if run_record is None:
            continue
        own = set(keys)
        materialized = sorted(
            {
                tuple(r.asset_key.path)
                for r in instance.get_records_for_run(
                    latest_run[1], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
                ).records
                if r.asset_key is not None
            }
            & own
        )
        runs.append(
            RunStatus(
                location=location,
                run_id=run_record.dagster_run.run_id,
                status=run_record.dagster_run.status.value,
                start=run_record.start_time or run_record.create_timestamp.timestamp(),
                end=run_record.end_time,
                tasks=tuple(materialized),
            )
        )
    return tuple(sorted(checks, key=lambda c: c.key)), tuple(runs)
