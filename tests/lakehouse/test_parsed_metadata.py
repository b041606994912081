"""MeshSqlCatalog: each metadata file parsed once per catalog, never a stale or borrowed table.

A table's loads and refreshes must see exactly what pyiceberg's SqlCatalog sees (the row's
current metadata file); only the parse of a file already read by this catalog is skipped.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from mesh_assets.lakehouse import pyiceberg_internals as internals


def _mesh_catalog(tmp_path: Path, name: str = "t"):
    from mesh_assets.lakehouse.transaction import MeshSqlCatalog

    return MeshSqlCatalog(
        name, uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The metadata files the catalog reads and parses, in order."""
    seen: list[str] = []
    read = internals.read_metadata

    def counted(input_file):
        seen.append(input_file.location)
        return read(input_file)

    monkeypatch.setattr(internals, "read_metadata", counted)
    return seen


def _rows(keys: str) -> pa.Table:
    return pa.table({"k": list(keys), "v": list(range(len(keys)))})


def _table(catalog, days: int = 3):
    table = catalog.create_table("d.t", schema=_rows("a").schema)
    for day in range(days):
        table.append(_rows("ab"[day % 2] * 2))
    return catalog.load_table("d.t")


def test_a_table_version_is_parsed_once_and_equals_the_stock_catalogs(catalog, tmp_path, parses):
    mesh = _mesh_catalog(tmp_path)
    _table(catalog)
    parses.clear()
    first = mesh.load_table("d.t")
    second = mesh.load_table("d.t")
    refreshed = second.refresh()
    assert parses == [first.metadata_location]  # one parse for three loads of the same version
    stock = catalog.load_table("d.t")
    assert first.metadata == second.metadata == refreshed.metadata == stock.metadata
    assert first.metadata_location == stock.metadata_location
    assert first.name() == stock.name() == ("d", "t")
    assert first.scan().to_arrow().sort_by("v").equals(stock.scan().to_arrow().sort_by("v"))


def test_another_writers_commit_is_seen_at_the_next_load(catalog, tmp_path):
    """The cache is keyed by the file the catalog row points at: a new commit is a new file."""
    mesh = _mesh_catalog(tmp_path)
    _table(catalog, days=2)
    before = mesh.load_table("d.t")
    catalog.load_table("d.t").append(_rows("zz"))  # pyiceberg's own catalog, another process alike
    after = mesh.load_table("d.t")
    assert after.metadata_location != before.metadata_location
    assert len(after.snapshots()) == len(before.snapshots()) + 1
    assert after.scan().count() == before.scan().count() + 2
    assert before.refresh().metadata == after.metadata


def test_the_platforms_writes_are_not_parsed_back(tmp_path, parses):
    """A write through IcebergTables hands its committed metadata to the catalog's next load."""
    from mesh_assets.lakehouse.tables import IcebergTables, TableRef

    (tmp_path / "warehouse").mkdir()
    mesh = _mesh_catalog(tmp_path)
    mesh.create_namespace("d")
    tables = IcebergTables(mesh)
    ref = TableRef("d", "w")
    tables.write(ref, _rows("abc"))
    for n in range(3):
        written = tables.write(ref, _rows("abcd"[: n + 1]))
        parses.clear()
        loaded = tables.load(ref)
        assert parses == []
        assert loaded.metadata_location == written.table.metadata_location
        assert loaded.scan().count() == n + 1
    from pyiceberg.catalog.sql import SqlCatalog

    stock = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )
    assert stock.load_table("d.w").metadata == tables.load(ref).metadata


def test_catalogs_do_not_share_what_they_parsed(catalog, tmp_path, parses):
    """Each principal's catalog reads the file itself, so the object store judges each one's read."""
    first, second = _mesh_catalog(tmp_path), _mesh_catalog(tmp_path)
    table = _table(catalog)
    parses.clear()
    first.load_table("d.t")
    first.load_table("d.t")
    second.load_table("d.t")
    assert parses == [table.metadata_location] * 2


def test_a_metadata_file_deleted_since_its_parse_fails_the_load_as_before(catalog, tmp_path):
    """A warehouse reset apart from its catalog is not hidden by what the process parsed earlier."""
    mesh = _mesh_catalog(tmp_path)
    table = _table(catalog)
    mesh.load_table("d.t")
    Path(table.metadata_location.removeprefix("file://")).unlink()
    with pytest.raises(FileNotFoundError):
        mesh.load_table("d.t")
    with pytest.raises(FileNotFoundError):
        catalog.load_table("d.t")  # pyiceberg's own catalog: the same error


def test_the_cache_is_bounded_by_the_snapshots_it_holds():
    parsed = internals.ParsedMetadata(max_snapshots=10)

    def metadata(snapshots: int):
        return SimpleNamespace(snapshots=[None] * snapshots)  # weight = snapshots + 1

    big, small, other = metadata(5), metadata(2), metadata(2)
    parsed.put("big", big)  # 6
    parsed.put("small", small)  # 9
    assert parsed.get("big") is big  # now the most recently used
    parsed.put("other", other)  # 12 > 10: the least recently used ("small") goes
    assert parsed.get("small") is None and parsed.get("big") is big and parsed.get("other") is other
    parsed.put("huge", metadata(20))  # larger than the whole cache: never held
    assert parsed.get("huge") is None and len(parsed) == 2


def _text(table) -> str:
    return Path(table.metadata_location.removeprefix("file://")).read_text()


def test_a_metadata_file_is_read_as_pyiceberg_reads_it_in_any_layout(catalog):
    """The parse equals pyiceberg's, and the snapshot array's text is the top-level one."""
    import json

    from pyiceberg.table.metadata import TableMetadataUtil

    table = _table(catalog, days=3)
    document = json.loads(_text(table))
    # a property and a branch both named "snapshots" come before the array, pretty-printed
    document["properties"]["snapshots"] = '"snapshots": [1]'
    document["refs"]["snapshots"] = {"snapshot-id": table.metadata.snapshots[0].snapshot_id, "type": "branch"}
    reordered = {"properties": document.pop("properties"), "refs": document.pop("refs"), **document}
    for text in (_text(table), json.dumps(reordered), json.dumps(reordered, indent=2)):
        metadata, array = internals.parse_metadata(text)
        assert metadata == TableMetadataUtil.parse_raw(text)
        assert array is not None and json.loads(array) == document["snapshots"]
        assert len(metadata.snapshots) == 3

    v1 = {**document, "format-version": 1, "schema": document["schemas"][0]}
    metadata, array = internals.parse_metadata(json.dumps(v1))
    assert (metadata, array) == (TableMetadataUtil.parse_raw(json.dumps(v1)), None)


def test_an_invalid_metadata_file_fails_with_pyicebergs_error(catalog):
    import json

    from pyiceberg.exceptions import ValidationError
    from pyiceberg.table.metadata import TableMetadataUtil

    document = json.loads(_text(_table(catalog, days=2)))
    del document["snapshots"][1]["manifest-list"]
    text = json.dumps(document)
    with pytest.raises(ValidationError) as ours:
        internals.parse_metadata(text)
    with pytest.raises(ValidationError) as stock:
        TableMetadataUtil.parse_raw(text)
    assert str(ours.value) == str(stock.value)
    assert "manifest-list" in str(ours.value)


@pytest.fixture
def serialized(monkeypatch) -> list[int]:
    """The snapshot ids serialized on their own (pyiceberg's writer serializes none this way)."""
    from pyiceberg.table.snapshots import Snapshot

    seen: list[int] = []
    dump = Snapshot.model_dump_json

    def counted(self, *args, **kwargs):
        seen.append(self.snapshot_id)
        return dump(self, *args, **kwargs)

    monkeypatch.setattr(Snapshot, "model_dump_json", counted)
    return seen


def test_a_commit_serializes_only_its_new_snapshots_and_writes_what_pyiceberg_writes(
    catalog, tmp_path, serialized
):
    import json

    from mesh_assets.lakehouse.transaction import transaction

    mesh = _mesh_catalog(tmp_path)
    _table(catalog, days=4)
    for n in range(2):  # the first from a file read here, the second from a commit made here
        before = mesh.load_table("d.t")
        serialized.clear()
        tx = transaction(before)
        tx.append(_rows("c" * (n + 1)))
        committed = tx.commit_transaction()
        assert serialized == [committed.metadata.snapshots[-1].snapshot_id]
        written = json.loads(_text(committed))
        assert written == json.loads(committed.metadata.model_dump_json())  # pyiceberg's own writer
        stock = catalog.load_table("d.t")
        assert stock.metadata == committed.metadata
        assert stock.scan().count() == 8 + n + 1 + (1 if n else 0)


def test_a_history_that_lost_snapshots_is_serialized_whole(catalog, serialized):
    """Expired snapshots: the base file's array no longer prefixes the new one."""
    import json

    table = _table(catalog, days=3)
    metadata, array = internals.parse_metadata(_text(table))
    assert array is not None
    trimmed = metadata.model_copy(update={"snapshots": metadata.snapshots[1:]})
    serialized.clear()
    result = internals.serialize_metadata(trimmed, (metadata.snapshots, array))
    assert result is not None
    assert json.loads(result[0]) == json.loads(trimmed.model_dump_json())
    assert len(serialized) == 2  # every kept snapshot, none taken from the old text
    same = internals.serialize_metadata(metadata, (metadata.snapshots, array))
    assert same is not None and same[1] == array  # nothing new: the text as it was
