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
    """The metadata files pyiceberg parses, in order."""
    from pyiceberg import serializers

    seen: list[str] = []
    parse = serializers.FromInputFile.table_metadata

    def counted(input_file, encoding: str = "utf-8"):
        seen.append(input_file.location)
        return parse(input_file, encoding)

    monkeypatch.setattr(serializers.FromInputFile, "table_metadata", staticmethod(counted))
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
