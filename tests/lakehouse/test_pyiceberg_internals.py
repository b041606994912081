"""The private pyiceberg APIs the platform uses still are what we reviewed, and still behave so."""

from __future__ import annotations

import uuid

import pyarrow as pa

from mesh_assets.lakehouse import pyiceberg_internals as internals


def test_no_private_pyiceberg_api_changed_since_it_was_reviewed():
    changed = internals.drifted()
    assert not changed, (
        f"pyiceberg changed internals the platform relies on: {sorted(changed)}. Re-read them, adapt "
        "mesh_assets/lakehouse/pyiceberg_internals.py (and transaction.py), then update PINNED with "
        f"the new fingerprints {changed}"
    )


def test_only_the_internals_module_imports_private_pyiceberg_names():
    """Every private pyiceberg API is reached through pyiceberg_internals, so one module is reviewed."""
    import re

    from mesh_assets.settings import REPO_ROOT

    private = re.compile(r"from pyiceberg[\w.]* import [^\n]*\b_[a-z]|pyiceberg\.[\w.]*\._[a-z]")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "mesh_assets").rglob("*.py")
        if path.name != "pyiceberg_internals.py" and private.search(path.read_text())
    ]
    assert offenders == []


def test_dataframe_to_data_files_stages_partitioned_files_without_committing(catalog):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    schema = Schema(NestedField(1, "k", StringType()), NestedField(2, "v", LongType()))
    spec = PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "k"))
    table = catalog.create_table("d.t", schema=schema, partition_spec=spec)
    data = pa.table({"k": ["a", "a", "b"], "v": [1, 2, 3]}, schema=schema.as_arrow())

    files = list(internals.dataframe_to_data_files(table.metadata, data, table.io, uuid.uuid4()))

    assert sorted((f.partition[0], f.record_count) for f in files) == [("a", 2), ("b", 1)]
    assert all(table.io.new_input(f.file_path).exists() for f in files)
    assert table.refresh().current_snapshot() is None  # staged, not committed


def test_transaction_state_is_the_base_metadata_and_the_staged_updates(catalog):
    from pyiceberg.schema import Schema
    from pyiceberg.table.update import SetPropertiesUpdate
    from pyiceberg.types import LongType, NestedField

    table = catalog.create_table("d.t", schema=Schema(NestedField(1, "v", LongType())))
    tx = table.transaction().set_properties({"a": "1"})
    base, updates = internals.transaction_state(tx)
    assert base is table.metadata
    assert updates == (SetPropertiesUpdate(updates={"a": "1"}),)
