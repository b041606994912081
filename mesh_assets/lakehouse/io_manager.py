"""The Dagster IO manager that stores every data product of the mesh as an Apache Iceberg table.

Why our own and not ``dagster-iceberg``: see ``docs/decisions/0001-iceberg-io-manager.md``.

* An asset keyed ``[domain, name]`` is the table ``domain.name`` (namespace = domain).
* pandas DataFrames, Arrow tables and Arrow RecordBatchReaders go in; the annotated type of the
  consuming parameter decides what comes out (a reader streams the table in batches).
* Partitioned assets name their partition column(s) in ``partition_expr`` metadata; a run
  replaces exactly its partitions. ``write_mode: append`` metadata appends instead of replacing.
* Reads can be pinned for reproducibility: ``AssetIn(metadata={"snapshot_id": ...})``, or
  ``{"ref": "<branch or tag>"}``, or ``{"as_of": "<ISO timestamp>"}``, or per run with the tag
  ``mesh/pin/<namespace>.<table>=<snapshot id>``. The snapshot actually read is recorded on the
  step as input metadata.
* Every materialization records the snapshot id, the row count, the table URI and the schema.

The IO manager holds the ``mesh`` settings resource (paths, host, ports: no secrets); credentials
are read by the settings when the catalog opens, so they never appear in run config, the UI or
event logs.

Every code location builds this IO manager when it loads, so this module imports only Dagster: the
storage engine (``tables``, ``partitions``, ``schema``; pyarrow and pyiceberg, about half a second)
is imported inside the methods that run in a step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.errors import storage_errors
from mesh_assets.resources import MeshResource
from mesh_assets.settings import MeshSettings

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from mesh_assets.lakehouse.tables import IcebergTables, TableRef, WriteResult

PIN_TAG_PREFIX = "mesh/pin/"


class UpstreamNotMaterializedError(LookupError):
    """An input's table does not exist yet."""


def audit_branch(run_id: str) -> str:
    """The Iceberg branch a run stages a contract-governed product on (write-audit-publish)."""
    return f"audit-{run_id}"


def table_ref(asset_key: dg.AssetKey) -> TableRef:
    """namespace = the domain (first key component), table = the rest of the key."""
    from mesh_assets.lakehouse.tables import TableRef

    path = asset_key.path
    if len(path) < 2:
        raise ValueError(
            f"asset key {asset_key.to_user_string()!r} has no domain prefix: mesh assets are keyed "
            "[domain, name] (use key_prefix=<domain>)"
        )
    return TableRef(namespace=path[0], name="__".join(path[1:]))


def materialization_metadata(result: WriteResult, ref: TableRef, catalog_name: str) -> dict[str, Any]:
    from mesh_assets.lakehouse.schema import dagster_table_schema

    table, snapshot = result.table, result.snapshot
    metadata: dict[str, Any] = {
        "dagster/uri": dg.MetadataValue.path(table.location()),
        "dagster/table_name": f"{catalog_name}.{ref.identifier}",
        "dagster/row_count": dg.MetadataValue.int(result.rows_written),
        "dagster/column_schema": dagster_table_schema(table.schema()),
        "iceberg/snapshot_id": dg.MetadataValue.int(snapshot.snapshot_id),
        "iceberg/table": dg.MetadataValue.text(ref.identifier),
        "iceberg/schema_id": dg.MetadataValue.int(table.schema().schema_id),
        "iceberg/replaced": dg.MetadataValue.text(result.replaced_filter),
    }
    if result.table_rows is not None:
        metadata["iceberg/table_row_count"] = dg.MetadataValue.int(result.table_rows)
    if result.schema_plan.changes:
        changes = [f"added {c}" for c in result.schema_plan.added] + [
            f"widened {c}" for c in result.schema_plan.widened
        ]
        metadata["iceberg/schema_change"] = dg.MetadataValue.text(", ".join(changes))
    return metadata


def publish_product(
    settings: MeshSettings,
    key: dg.AssetKey,
    data: object,
    *,
    run_id: str,
    dims: list[Any] | None = None,
    partition_keys: list[str] | None = None,
    mode: str = "overwrite",
    branch: str | None = None,
    contract_columns: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> tuple[WriteResult, dict[str, Any]]:
    """Write a product's data to its table in one Iceberg commit: the one write path of the mesh.

    The IO manager (Python assets, staged on ``branch`` when the product has a contract) and the
    dbt runtime (models that passed their tests and contract) both publish through here, so the
    snapshot properties, schema evolution, partition replacement, contract columns and error
    messages are the same whoever produced the rows. Returns the write and its materialization
    metadata.
    """
    ref = table_ref(key)
    snapshot_properties = {
        "mesh.dagster.run-id": run_id,
        "mesh.dagster.asset-key": key.to_user_string(),
        **(properties or {}),
    }
    if partition_keys:
        snapshot_properties["mesh.dagster.partitions"] = ",".join(partition_keys[:50]) + (
            ",..." if len(partition_keys) > 50 else ""
        )
    with storage_errors(settings, f"writing {ref.identifier}"):
        result = _tables(settings).write(
            ref,
            data,
            dims=dims,
            partition_keys=partition_keys,
            mode=mode,
            branch=branch,
            snapshot_properties=snapshot_properties,
            contract_columns=json.loads(contract_columns) if contract_columns else None,
        )
    return result, materialization_metadata(result, ref, settings.catalog_name)


def _tables(settings: MeshSettings) -> IcebergTables:
    from mesh_assets.lakehouse.tables import IcebergTables

    # load_catalog caches the catalog per settings; IcebergTables is a thin wrapper around it.
    return IcebergTables(load_catalog(settings))


class IcebergIOManager(dg.ConfigurableIOManager):
    """Stores assets as Iceberg tables in the catalog of the ``mesh`` settings' profile."""

    mesh: MeshResource
    # The domain whose code location binds this IO manager ("" outside a domain, e.g. a test's own
    # materialize): it writes only its own namespace and reads other domains' products under
    # ``read_grants`` (JSON from the contracts, see ``mesh_assets.contracts.access``).
    domain: str = ""
    read_grants: str = ""

    @classmethod
    def for_settings(cls, settings: MeshSettings) -> IcebergIOManager:
        return cls(mesh=MeshResource.of(settings))

    @property
    def settings(self) -> MeshSettings:
        return self.mesh.settings

    @property
    def tables(self) -> IcebergTables:
        return _tables(self.settings)

    # ---- outputs -------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return  # the asset stored nothing (e.g. it only ran checks or wrote through Trino)
        from mesh_assets.lakehouse import partitions as parts
        from mesh_assets.lakehouse.access import check_write

        check_write(self.domain, context.asset_key.path)
        ref = table_ref(context.asset_key)
        definition = context.definition_metadata or {}
        dims, keys = None, None
        if context.has_asset_partitions:
            dims = parts.dimensions(context.asset_partitions_def, definition.get("partition_expr"))
            keys = list(context.asset_partition_keys)
        result, metadata = publish_product(
            self.settings,
            context.asset_key,
            obj,
            run_id=context.run_id,
            dims=dims,
            partition_keys=keys,
            mode=str(definition.get("write_mode", "overwrite")),
            branch=audit_branch(context.run_id) if definition.get("mesh/wap") else None,
            contract_columns=definition.get("mesh/contract_columns"),
        )
        context.add_output_metadata(metadata)
        staged = (
            " on audit branch (published after its contract check passes)"
            if definition.get("mesh/wap")
            else ""
        )
        context.log.info(
            f"wrote {result.rows_written} rows to {ref.identifier} at snapshot {result.snapshot_id}{staged}"
        )

    # ---- inputs --------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> object:
        ref = table_ref(context.asset_key)
        with storage_errors(self.settings, f"reading {ref.identifier}"):
            return self._load(context, ref)

    def _load(self, context: dg.InputContext, ref: TableRef) -> object:
        import pyarrow as pa
        from pyiceberg.exceptions import NoSuchTableError

        from mesh_assets.lakehouse.access import check_read, parse_grants
        from mesh_assets.lakehouse.tables import IcebergTables

        try:
            table = self.tables.load(ref)
        except NoSuchTableError:
            raise UpstreamNotMaterializedError(
                f"{context.asset_key.to_user_string()} has not been materialized yet (no table "
                f"{ref.identifier} in the {self.settings.profile.value} catalog): materialize it first"
            ) from None
        snapshot = IcebergTables.resolve_snapshot(table, **self._pin(context, ref))
        row_filter = self._partition_filter(context, table)
        columns = (context.definition_metadata or {}).get("columns")
        grant = check_read(
            self.domain,
            parse_grants(self.read_grants),
            context.asset_key.path,
            columns,
            [f.name for f in table.schema().fields],
        )
        if grant is not None and grant.row_filter:
            from pyiceberg.expressions import And, parser

            granted = parser.parse(grant.row_filter)  # the rows the contract lets this domain see
            row_filter = granted if row_filter is None else And(row_filter, granted)
        scan = IcebergTables.scan(table, row_filter=row_filter, snapshot=snapshot, columns=columns)

        wanted = context.dagster_type.typing_type if context.dagster_type else None
        if wanted is pa.RecordBatchReader:
            value: object = scan.to_arrow_batch_reader()
            rows = None
        elif wanted is pa.Table:
            arrow = scan.to_arrow()
            value, rows = arrow, arrow.num_rows
        else:
            value = scan.to_pandas()
            rows = len(value)
        metadata: dict[str, Any] = {"iceberg/table": ref.identifier}
        if snapshot is not None:
            metadata["iceberg/snapshot_id"] = dg.MetadataValue.int(snapshot.snapshot_id)
        if rows is not None:
            metadata["dagster/row_count"] = dg.MetadataValue.int(rows)
        if not context.has_asset_partitions or len(context.asset_partition_keys) == 1:
            # Dagster can only attach input metadata to zero or one upstream partition.
            context.add_input_metadata(metadata, description=f"read {ref.identifier}")
        context.log.info(f"read {ref.identifier} at snapshot {snapshot.snapshot_id if snapshot else None}")
        return value

    @staticmethod
    def _pin(context: dg.InputContext, ref: TableRef) -> dict[str, Any]:
        meta: Mapping[str, Any] = context.definition_metadata or {}
        pin = {k: meta[k] for k in ("snapshot_id", "ref", "as_of") if meta.get(k) is not None}
        tag = None
        try:
            tag = context.step_context.run_tags.get(f"{PIN_TAG_PREFIX}{ref.identifier}")
        except Exception:
            tag = None
        if tag:
            pin = {"snapshot_id": int(tag)}
        if len(pin) > 1:
            raise ValueError(
                f"pin the read of {ref.identifier} by one of snapshot_id, ref or as_of, not {sorted(pin)}"
            )
        return pin

    @staticmethod
    def _partition_filter(context: dg.InputContext, table: Table):
        from mesh_assets.lakehouse import partitions as parts

        if not context.has_asset_partitions:
            return None
        upstream_def = context.asset_partitions_def
        keys = list(context.asset_partition_keys)
        if set(keys) >= set(upstream_def.get_partition_keys(dynamic_partitions_store=context.instance)):
            return None  # every partition: no filter, no long IN-list
        dims = parts.dimensions_from_properties(upstream_def, table.properties, ".".join(table.name()))
        return parts.selection_filter(dims, keys, table.schema())
