"""MeshTransaction: pyiceberg's transaction, same results, a metadata view whose cost follows the work.

The equivalence tests compare against stock pyiceberg on the same operations; the last test fails
when pyiceberg itself stops deep-copying the view on every read (apache/iceberg-python#3302,
#3784): then this module and ``transaction.py`` can go.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from mesh_assets.lakehouse import pyiceberg_internals as internals
from mesh_assets.lakehouse.transaction import MeshTransaction


def _schema():
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    return Schema(NestedField(1, "k", StringType()), NestedField(2, "v", LongType()))


def _rows(keys: str, start: int = 0) -> pa.Table:
    return pa.table({"k": list(keys), "v": list(range(start, start + len(keys)))})


def _partitioned(catalog, name: str):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    spec = PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "k"))
    return catalog.create_table(f"d.{name}", schema=_schema(), partition_spec=spec)


def _comparable(metadata) -> dict:
    """Metadata without what differs between two tables by construction (ids, uuids, times, paths)."""
    dump = metadata.model_dump()
    for key in ("table-uuid", "location", "last-updated-ms", "current-snapshot-id", "metadata-log"):
        del dump[key]
    dump["snapshots"] = [(s["sequence-number"], s["summary"], s["schema-id"]) for s in dump["snapshots"]]
    dump["snapshot-log"] = len(dump["snapshot-log"])
    dump["refs"] = sorted(dump["refs"])
    return dump


def _history(table, days: int) -> None:
    for day in range(days):
        table.append(_rows("abc"[day % 3] * 2, start=10 * day))


def _overwrite(tx, io, data: pa.Table, key: str, branch: str = "main") -> None:
    """What IcebergTables._commit does: evolve the schema, delete one partition, append, on a branch."""
    from pyiceberg.expressions import EqualTo

    if "extra" in data.column_names:
        with tx.update_schema() as update:
            update.union_by_name(data.schema)
    tx.delete(EqualTo("k", key), branch=branch)
    with tx.update_snapshot(branch=branch).fast_append() as append:
        for data_file in internals.dataframe_to_data_files(tx.table_metadata, data, io, uuid.uuid4()):
            append.append_data_file(data_file)


@pytest.mark.parametrize("evolve", [False, True], ids=["overwrite", "overwrite+schema"])
@pytest.mark.parametrize("branch", ["main", "audit"])
def test_same_metadata_snapshots_and_rows_as_stock_pyiceberg(catalog, evolve, branch):
    from pyiceberg.table import Transaction

    results = {}
    for name, cls in (("stock", Transaction), ("mesh", MeshTransaction)):
        table = _partitioned(catalog, name)
        _history(table, 5)
        if branch != "main":
            table.manage_snapshots().create_branch(table.current_snapshot().snapshot_id, branch).commit()
            table = table.refresh()
        data = _rows("aa", start=100)
        if evolve:
            data = data.append_column("extra", pa.array(["x", "y"]))
        tx = cls(table)
        _overwrite(tx, table.io, data, "a", branch)
        views = tx.table_metadata
        committed = tx.commit_transaction()
        rows = committed.scan(snapshot_id=committed.snapshot_by_name(branch).snapshot_id).to_arrow()
        results[name] = (
            _comparable(views),
            _comparable(committed.metadata),
            sorted(rows.to_pylist(), key=str),
        )
    assert results["mesh"] == results["stock"]


def test_the_view_equals_pyiceberg_replay_after_every_staged_change(catalog):
    from pyiceberg.table.update import update_table_metadata
    from pyiceberg.types import StringType

    table = _partitioned(catalog, "t")
    _history(table, 4)
    tx = MeshTransaction(table)
    steps = [
        lambda: tx.set_properties({"p": "1"}),
        lambda: tx.update_schema().add_column("extra", StringType()).commit(),
        lambda: tx.delete("k == 'b'"),
        lambda: tx.append(_rows("bb", 50)),
        lambda: tx.remove_properties("p"),
    ]
    for step in steps:
        step()
        base, updates = internals.transaction_state(tx)
        ours, stock = tx.table_metadata.model_dump(), update_table_metadata(base, updates).model_dump()
        ours.pop("last-updated-ms"), stock.pop("last-updated-ms")
        assert ours == stock


def test_the_view_is_computed_once_per_staged_change(catalog, monkeypatch):
    table = _partitioned(catalog, "t")
    _history(table, 3)
    calls = []
    replay = internals.replay_updates
    monkeypatch.setattr(internals, "replay_updates", lambda b, u: calls.append(len(u)) or replay(b, u))
    tx = MeshTransaction(table)
    for _ in range(10):
        tx.table_metadata  # noqa: B018
    tx.set_properties({"p": "1"})
    for _ in range(10):
        tx.table_metadata  # noqa: B018
    assert calls == [0, 1]


def test_a_view_read_does_not_copy_the_history(catalog):
    """The cost of the view follows the staged changes: the snapshots are shared, not copied."""
    table = _partitioned(catalog, "t")
    _history(table, 6)
    tx = MeshTransaction(table)
    tx.set_properties({"p": "1"})
    view = tx.table_metadata
    assert view.snapshots[0] is table.metadata.snapshots[0]
    assert view.properties["p"] == "1" and "p" not in table.metadata.properties


def test_a_concurrent_commit_is_retried_and_both_writes_land(catalog):
    """pyiceberg's retry (refresh, re-validate, re-stage) works through the cached view."""
    table = _partitioned(catalog, "t")
    table.transaction().set_properties({"commit.retry.min-wait-ms": "1"}).commit_transaction()
    _history(table, 2)
    table = catalog.load_table("d.t")
    tx = MeshTransaction(table)
    with tx.update_snapshot().fast_append() as append:
        for f in internals.dataframe_to_data_files(
            tx.table_metadata, _rows("cc", 70), table.io, uuid.uuid4()
        ):
            append.append_data_file(f)
    catalog.load_table("d.t").append(_rows("dd", 80))  # another writer wins the race
    committed = tx.commit_transaction()
    keys = sorted(committed.scan().to_arrow().column("k").to_pylist())
    assert keys.count("c") == 2 and keys.count("d") == 2
    assert len(committed.snapshots()) == 4


def test_stock_pyiceberg_still_deep_copies_on_every_read(catalog):
    """Fails once pyiceberg caches Transaction.table_metadata itself: then delete MeshTransaction.

    When this fails, check that a partition overwrite's cost no longer grows with the snapshot
    count (``mesh bench io``, history depths), replace ``MeshTransaction(table)`` with
    ``table.transaction()`` in tables.py, and delete transaction.py, its tests and the
    internals they needed.
    """
    table = _partitioned(catalog, "t")
    _history(table, 2)
    tx = table.transaction()
    first, second = tx.table_metadata, tx.table_metadata
    assert first is not second and first.snapshots[0] is not table.metadata.snapshots[0], (
        "pyiceberg now caches the transaction's metadata view: MeshTransaction can be removed"
    )


def test_commit_is_atomic_for_concurrent_writers_through_iceberg_tables(catalog):
    """Two IcebergTables writers replacing different partitions at once: both land, nothing is lost."""
    import dagster as dg

    from mesh_assets.lakehouse import partitions as parts
    from mesh_assets.lakehouse.tables import IcebergTables, TableRef

    keys = dg.StaticPartitionsDefinition(["a", "b", "c", "d"])
    dims = parts.dimensions(keys, "k")
    ref = TableRef("d", "w")
    tables = IcebergTables(catalog)
    tables.write(ref, _rows("abcd"), dims=dims, partition_keys=list("abcd"))
    errors = []

    def write(key: str) -> None:
        try:
            for i in range(3):
                tables.write(ref, _rows(key * 3, 100 * i), dims=dims, partition_keys=[key])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    keys_now = sorted(catalog.load_table("d.w").scan().to_arrow().column("k").to_pylist())
    assert keys_now == ["a"] * 3 + ["b"] * 3 + ["c", "d"]


def test_sql_commit_writes_what_sqlcatalog_writes(catalog):
    """The committed metadata (re-read from the catalog) equals a stock commit's on a twin table."""
    from pyiceberg.table import Transaction

    from mesh_assets.lakehouse.transaction import transaction

    reread = {}
    for name, start in (("stock", Transaction), ("mesh", transaction)):
        table = _partitioned(catalog, name)
        _history(table, 4)
        tx = start(catalog.load_table(f"d.{name}"))
        tx.set_properties({"p": "1"})
        _overwrite(tx, table.io, _rows("bb", 5), "b")
        committed = tx.commit_transaction()
        loaded = catalog.load_table(f"d.{name}")
        assert loaded.metadata_location == committed.metadata_location
        assert loaded.metadata == committed.metadata
        reread[name] = (_comparable(loaded.metadata), len(loaded.metadata.metadata_log))
    assert reread["mesh"] == reread["stock"]


def test_sql_commit_does_not_reload_a_current_table_and_defers_a_stale_one(catalog, monkeypatch):
    """Current base: no reload. Stale base: SqlCatalog judges it (a property change still lands)."""
    from mesh_assets.lakehouse.transaction import MeshTable, transaction

    table = _partitioned(catalog, "t")
    _history(table, 2)
    loads = []
    load_table = type(catalog).load_table
    monkeypatch.setattr(
        type(catalog), "load_table", lambda self, ident: loads.append(ident) or load_table(self, ident)
    )

    current = MeshTable.of(catalog.load_table("d.t"))
    loads.clear()
    transaction(current).set_properties({"a": "1"}).commit_transaction()
    assert loads == []

    stale = MeshTable.of(table)  # loaded before the commit above
    transaction(stale).set_properties({"b": "2"}).commit_transaction()
    assert loads  # handed to SqlCatalog.commit_table, which read the current state
    properties = catalog.load_table("d.t").properties
    assert properties["a"] == "1" and properties["b"] == "2"
    # the file written for the refused swap was removed: one metadata file per landed commit
    metadata_dir = Path(table.location().removeprefix("file://")) / "metadata"
    landed = catalog.load_table("d.t").metadata.metadata_log
    assert len(list(metadata_dir.glob("*.metadata.json"))) == len(landed) + 1
