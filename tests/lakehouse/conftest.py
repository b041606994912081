"""A throwaway SQLite catalog per test: the storage layer alone, no Dagster, no MESH_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def catalog(tmp_path: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )
    catalog.create_namespace("d")
    return catalog
