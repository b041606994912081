"""Writing and reading Iceberg tables: the storage engine behind the IO manager.

Kept free of Dagster contexts so the benchmark, the maintenance jobs and (later) write-audit-publish
use exactly the code the IO manager uses.

A write is one Iceberg transaction: optional schema evolution, a delete of the partitions being
replaced and an append of the new data files. Readers therefore see either the previous snapshot
or the new one, never a half-written table. Data files are staged before the commit; if the commit
fails (a concurrent writer won), pyiceberg refreshes the table, re-validates the delete against
the new state and retries with exponential backoff, bounded by the table's ``commit.retry.*``
properties set here at creation. Staged files of a commit that never landed are deleted.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot

from mesh_assets.lakehouse import partitions as parts
from mesh_assets.lakehouse import pyiceberg_internals as internals
from mesh_assets.lakehouse.catalog import ensure_namespace
from mesh_assets.lakehouse.schema import (
    SchemaPlan,
    arrow_to_iceberg_schema,
    check_contract_columns,
    conform,
    normalise_arrow_schema,
    plan_evolution,
    to_arrow,
)
from mesh_assets.lakehouse.transaction import MeshTable, transaction

# Iceberg's manifest merging (the Java library's default; pyiceberg's is off). Without it a table
# written daily gains one manifest per commit, and every overwrite reads and rewrites a manifest
# list as long as the table's history (1,000 days: 5x the write of a one-day table). Merged, the
# list holds a few full manifests of old days (each up to the target size, never rewritten by
# appends) and fewer than ``min-count-to-merge`` recent ones: an overwrite reads about a dozen
# entries whatever the history, and a merge rewrites at most one target size of entries (about
# 700 daily files of a narrow table) every ten commits. Set at creation, and at the next write of
# a table created before; a property the table's owner set keeps its value.
MANIFEST_MERGE = "commit.manifest-merge.enabled"
MANIFEST_PROPERTIES: dict[str, str] = {
    MANIFEST_MERGE: "true",
    "commit.manifest.min-count-to-merge": "10",  # Iceberg's default: 100
    "commit.manifest.target-size-bytes": str(256 * 1024),  # Iceberg's default: 8 MiB
}

# Bounded, jittered exponential backoff for commit conflicts (pyiceberg applies it on retry).
DEFAULT_TABLE_PROPERTIES: dict[str, str] = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "5000",
    "commit.retry.total-timeout-ms": "120000",
    **MANIFEST_PROPERTIES,
}

# Arrow bytes per chunk when writing a RecordBatchReader: bounds the memory of a streamed write.
STREAM_CHUNK_BYTES = 64 * 1024 * 1024
# Snapshot property of the empty snapshot a new table gets so that its first write can branch
# (Iceberg cannot branch a table without snapshots); purged with the table if that write fails.
GENESIS = "mesh.genesis"
# Full re-plans (new transaction, files rewritten when the schema moved) after pyiceberg's own retries.
REPLAN_ATTEMPTS = 3


class TableConflictError(RuntimeError):
    """The declared partitioning no longer matches the existing table."""


@dataclass(frozen=True)
class TableRef:
    """Where an asset lives in the catalog: namespace = domain, table = asset."""

    namespace: str
    name: str

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass
class WriteResult:
    table: Table
    snapshot: Snapshot
    rows_written: int
    schema_plan: SchemaPlan = field(default_factory=SchemaPlan)
    replaced_filter: str = "true"

    @property
    def snapshot_id(self) -> int:
        return self.snapshot.snapshot_id

    @property
    def table_rows(self) -> int | None:
        total = (self.snapshot.summary or {}).get("total-records")
        return int(total) if total is not None else None


class _CountingReader:
    """Wraps a RecordBatchReader: normalises each batch and counts rows, without holding them."""

    def __init__(self, reader: pa.RecordBatchReader, schema: pa.Schema) -> None:
        self.reader, self.schema, self.rows = reader, schema, 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self.reader:
            if not batch.schema.equals(self.schema):
                batch = batch.cast(self.schema)
            self.rows += batch.num_rows
            yield batch

    def chunks(self, max_bytes: int) -> Iterator[pa.Table]:
        pending, size = [], 0
        for batch in self.batches():
            pending.append(batch)
            size += batch.nbytes
            if size >= max_bytes:
                yield pa.Table.from_batches(pending, schema=self.schema)
                pending, size = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=self.schema)


class IcebergTables:
    """Table operations on one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ---- tables --------------------------------------------------------------------------
    def load(self, ref: TableRef) -> Table:
        return self.catalog.load_table(ref.identifier)

    def exists(self, ref: TableRef) -> bool:
        return self.catalog.table_exists(ref.identifier)

    def _load_or_create(
        self, ref: TableRef, schema: pa.Schema, dims: Sequence[parts.Dimension] | None
    ) -> Table:
        try:
            table = self.load(ref)
        except NoSuchTableError:
            ensure_namespace(self.catalog, ref.namespace)
            iceberg_schema = arrow_to_iceberg_schema(schema)
            spec = parts.partition_spec(dims, iceberg_schema) if dims else None
            properties = dict(DEFAULT_TABLE_PROPERTIES)
            if dims:
                properties.update(parts.partition_properties(dims))
            try:
                if spec is not None:
                    return self.catalog.create_table(
                        ref.identifier, schema=iceberg_schema, properties=properties, partition_spec=spec
                    )
                return self.catalog.create_table(ref.identifier, schema=iceberg_schema, properties=properties)
            except TableAlreadyExistsError:  # a concurrent run created it first
                table = self.load(ref)
        self._check_spec(ref, table, dims)
        return table

    @staticmethod
    def _check_spec(ref: TableRef, table: Table, dims: Sequence[parts.Dimension] | None) -> None:
        spec = table.spec()
        current = [(table.schema().find_column_name(f.source_id), str(f.transform)) for f in spec.fields]
        declared = [(d.column, str(d.transform)) for d in dims or ()]
        if current != declared:
            raise TableConflictError(
                f"table {ref.identifier} is partitioned by {current or 'nothing'} but the asset declares "
                f"{declared or 'no partitions'}. Changing an asset's partitioning needs a new table: "
                "publish a new major version of the product (or drop the table)."
            )

    # ---- writes --------------------------------------------------------------------------
    def write(
        self,
        ref: TableRef,
        data: object,
        *,
        dims: Sequence[parts.Dimension] | None = None,
        partition_keys: Sequence[str] | None = None,
        mode: str = "overwrite",
        branch: str | None = None,
        snapshot_properties: Mapping[str, str] | None = None,
        contract_columns: list[dict[str, Any]] | None = None,
    ) -> WriteResult:
        """Write ``data`` (DataFrame, Arrow table or RecordBatchReader) in one atomic commit.

        With ``dims`` and ``partition_keys``, exactly those partitions are replaced and every row
        must lie inside them. Without, ``mode='overwrite'`` replaces the whole table and
        ``mode='append'`` adds rows.
        """
        if mode not in ("overwrite", "append"):
            raise ValueError(f"write mode must be 'overwrite' or 'append', not {mode!r}")
        if dims and not partition_keys:
            raise parts.PartitionError(f"{ref.identifier} is partitioned: a write needs the partition key(s)")
        source: pa.Table | _CountingReader
        if isinstance(data, pa.RecordBatchReader):
            # pyarrow's stubs do not let isinstance narrow to RecordBatchReader: say what it is
            reader = cast(pa.RecordBatchReader, data)
            schema = normalise_arrow_schema(reader.schema)
            source = _CountingReader(reader, schema)
        else:
            arrow = to_arrow(data)
            source, schema = arrow, arrow.schema
            if dims:
                parts.check_rows_in_partitions(dims, partition_keys or (), arrow)

        if contract_columns is not None:
            types = {f.name: str(f.field_type) for f in arrow_to_iceberg_schema(schema).fields}
            check_contract_columns(contract_columns, types)
        properties = {k: str(v) for k, v in (snapshot_properties or {}).items()}
        for attempt in range(1, REPLAN_ATTEMPTS + 1):
            table = self._load_or_create(ref, schema, dims)
            created_branch = bool(branch) and table.snapshot_by_name(branch) is None
            if branch:
                table = self._ensure_branch(table, branch)
            try:
                return self._commit(table, source, schema, dims, partition_keys, mode, branch, properties)
            except CommitFailedException:
                # pyiceberg's own retries are exhausted or the schema moved under us: re-plan from
                # scratch when the input can be replayed; a drained stream cannot.
                if isinstance(source, _CountingReader) or attempt == REPLAN_ATTEMPTS:
                    self._drop_branch(ref, branch, created_branch)
                    raise
                time.sleep(0.2 * attempt)
            except BaseException:
                # a failed write leaves no audit branch behind: main was never touched
                self._drop_branch(ref, branch, created_branch)
                raise
        raise AssertionError("unreachable")

    def _commit(
        self,
        table: Table,
        source: pa.Table | _CountingReader,
        schema: pa.Schema,
        dims: Sequence[parts.Dimension] | None,
        partition_keys: Sequence[str] | None,
        mode: str,
        branch: str | None,
        properties: dict[str, str],
    ) -> WriteResult:
        plan = plan_evolution(table.schema(), schema)
        # Not table.transaction(): pyiceberg's deep-copies the whole metadata on each of the ~40
        # reads of its view, so the cost of a write followed the table's history (transaction.py).
        tx = transaction(table)
        if missing := {k: v for k, v in MANIFEST_PROPERTIES.items() if k not in table.properties}:
            tx.set_properties(missing)
        if plan.changes:
            with tx.update_schema() as update:
                update.union_by_name(schema)
        metadata = tx.table_metadata
        iceberg_schema = metadata.schema()
        write_uuid = uuid.uuid4()

        if dims:
            replace: BooleanExpression = parts.selection_filter(dims, partition_keys or (), iceberg_schema)
        else:
            replace = AlwaysTrue()
        target_branch = branch or "main"
        files: list[DataFile] = []
        committing = False
        try:
            for data_file in self._stage_files(tx, table, source, dims, partition_keys, write_uuid):
                files.append(data_file)  # tracked one by one: a stream failing midway leaves no orphans
            if mode == "overwrite" and table.snapshot_by_name(target_branch) is not None:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                    tx.delete(replace, snapshot_properties=properties, branch=target_branch)
            # merges manifests when the table says so (MANIFEST_MERGE); else the same as fast_append
            with tx.update_snapshot(
                snapshot_properties=properties, branch=target_branch
            ).merge_append() as append:
                for data_file in files:
                    append.append_data_file(data_file)
            committing = True
            committed = tx.commit_transaction()
        except (CommitFailedException, ValidationException):
            # The commit certainly did not land: the staged data files are garbage.
            self._delete_files(table, files)
            raise
        except BaseException:
            # Failed while staging: nothing references the files. Failed while committing with an
            # unknown outcome: the files may be live, so they are left for orphan-file cleanup.
            if not committing:
                self._delete_files(table, files)
            raise
        snapshot = committed.snapshot_by_name(target_branch) or committed.current_snapshot()
        rows = source.rows if isinstance(source, _CountingReader) else source.num_rows
        return WriteResult(committed, snapshot, rows, plan, str(replace))  # type: ignore[arg-type]

    @staticmethod
    def _ensure_branch(table: Table, branch: str) -> Table:
        """Create ``branch`` at main's head (write-audit-publish stages on it; main stays as it is).

        Iceberg cannot branch a table without snapshots, so a new table first gets an empty
        snapshot on main: consumers see an empty, published table, never unchecked rows.
        """
        if table.snapshot_by_name(branch) is not None:
            return table
        if table.current_snapshot() is None:
            empty = table.schema().as_arrow().empty_table()
            with contextlib.suppress(CommitFailedException):  # a concurrent run made the genesis snapshot
                table.append(empty, snapshot_properties={GENESIS: "true"})
            table = table.refresh()
        current = table.current_snapshot()
        if current is None:
            raise RuntimeError(f"{table.name()} has no snapshot to branch {branch} from")
        with contextlib.suppress(CommitFailedException):
            MeshTable.of(table).manage_snapshots().create_branch(current.snapshot_id, branch).commit()
        return table.refresh()

    def publish(self, ref: TableRef, branch: str, properties: Mapping[str, str] | None = None) -> Snapshot:
        """Fast-forward main to ``branch`` (the audited snapshot) and drop the branch.

        Refused when main moved since the branch was cut: publishing would silently discard
        that other commit.
        """
        table = self.load(ref)
        audited = table.snapshot_by_name(branch)
        if audited is None:
            raise LookupError(f"{ref.identifier} has no audit branch {branch!r} to publish")
        main = table.current_snapshot()
        if main is not None and not _is_ancestor(table, main.snapshot_id, audited.snapshot_id):
            raise CommitFailedException(
                f"main of {ref.identifier} moved since audit branch {branch!r} was created; re-run to re-audit"
            )
        with MeshTable.of(table).manage_snapshots() as manage:
            manage.set_current_snapshot(audited.snapshot_id)
            manage.remove_branch(branch)
        if properties:
            transaction(table.refresh()).set_properties(dict(properties)).commit_transaction()
        return audited

    def _drop_branch(self, ref: TableRef, branch: str | None, created: bool) -> None:
        if branch and created:
            with contextlib.suppress(Exception):
                self.discard(ref, branch)

    def discard(self, ref: TableRef, branch: str) -> None:
        """Drop an audit branch that failed its checks (its files go with snapshot expiry).

        When that was the product's first write, the table holds nothing but the empty genesis
        snapshot it was branched from: it is purged, so a first publish that failed leaves the
        catalog as it found it (no table, not an empty published one). A table another writer
        is staging on (any other branch or tag) is left alone.
        """
        table = self.load(ref)
        if table.snapshot_by_name(branch) is not None:
            MeshTable.of(table).manage_snapshots().remove_branch(branch).commit()
            table = table.refresh()
        if _only_genesis(table):
            with contextlib.suppress(NoSuchTableError):  # a concurrent discard purged it first
                self.catalog.purge_table(ref.identifier)

    @staticmethod
    def _stage_files(
        tx: Transaction,
        table: Table,
        source: pa.Table | _CountingReader,
        dims: Sequence[parts.Dimension] | None,
        partition_keys: Sequence[str] | None,
        write_uuid: uuid.UUID,
    ) -> Iterator[DataFile]:
        metadata = tx.table_metadata
        iceberg_schema = metadata.schema()
        io = table.io
        if not isinstance(source, _CountingReader):
            if source.num_rows:  # an empty output has no data files (pyiceberg divides by its size)
                yield from internals.dataframe_to_data_files(
                    metadata, conform(source, iceberg_schema), io, write_uuid
                )
            return
        # A stream is written chunk by chunk, each chunk's files finished before the next is read:
        # pyiceberg's own streaming path submits every batch group to a thread pool at once, so
        # memory grew with the table (bench: +1 GiB for a 10M-row stream).
        counter = itertools.count(0)
        for chunk in source.chunks(STREAM_CHUNK_BYTES):
            if not chunk.num_rows:
                continue
            if dims:
                parts.check_rows_in_partitions(dims, partition_keys or (), chunk)
            yield from internals.dataframe_to_data_files(
                metadata, conform(chunk, iceberg_schema), io, write_uuid, counter
            )

    @staticmethod
    def _delete_files(table: Table, files: Sequence[DataFile]) -> None:
        for data_file in files:
            with contextlib.suppress(Exception):
                table.io.delete(data_file.file_path)

    # ---- reads ---------------------------------------------------------------------------
    @staticmethod
    def resolve_snapshot(
        table: Table,
        *,
        snapshot_id: int | None = None,
        ref: str | None = None,
        as_of: datetime | str | int | None = None,
    ) -> Snapshot | None:
        """The snapshot a read should see: pinned by id, by branch/tag name, by time, or current."""
        if snapshot_id is not None:
            snapshot = table.snapshot_by_id(int(snapshot_id))
            if snapshot is None:
                known = [s.snapshot_id for s in table.snapshots()[-5:]]
                raise LookupError(
                    f"snapshot {snapshot_id} does not exist in {table.name()} (it may have been expired); "
                    f"recent snapshots: {known}"
                )
            return snapshot
        if ref is not None:
            snapshot = table.snapshot_by_name(ref)
            if snapshot is None:
                raise LookupError(
                    f"{table.name()} has no branch or tag {ref!r}; refs: {sorted(table.refs())}"
                )
            return snapshot
        if as_of is not None:
            if isinstance(as_of, str):
                as_of = datetime.fromisoformat(as_of)
            millis = int(as_of.timestamp() * 1000) if isinstance(as_of, datetime) else int(as_of)
            snapshot = table.snapshot_as_of_timestamp(millis)
            if snapshot is None:
                raise LookupError(f"{table.name()} has no snapshot at or before {as_of}")
            return snapshot
        return table.current_snapshot()

    @staticmethod
    def scan(
        table: Table,
        *,
        row_filter: BooleanExpression | None = None,
        snapshot: Snapshot | None = None,
        columns: Sequence[str] | None = None,
    ):
        kwargs: dict[str, object] = {"row_filter": row_filter or AlwaysTrue()}
        if snapshot is not None:
            kwargs["snapshot_id"] = snapshot.snapshot_id
        if columns:
            kwargs["selected_fields"] = tuple(columns)
        return table.scan(**kwargs)  # type: ignore[arg-type]


def _only_genesis(table: Table) -> bool:
    """Whether main never held more than the empty snapshot a first audit branch was cut from."""
    current = table.current_snapshot()
    return (
        current is not None
        and set(table.refs()) == {"main"}
        and (current.summary or {}).get(GENESIS) == "true"
        and [entry.snapshot_id for entry in table.history()] == [current.snapshot_id]
    )


def _is_ancestor(table: Table, ancestor_id: int, snapshot_id: int) -> bool:
    current = table.snapshot_by_id(snapshot_id)
    while current is not None:
        if current.snapshot_id == ancestor_id:
            return True
        current = table.snapshot_by_id(current.parent_snapshot_id) if current.parent_snapshot_id else None
    return False
