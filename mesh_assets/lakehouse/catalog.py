"""The Iceberg catalog of a profile, built once per process.

Both profiles use pyiceberg's SQL catalog: SQLite in ``local``, PostgreSQL in ``lake``, where it
is the very same JDBC catalog Trino's Iceberg connector reads, so a table written here is a
table Trino sees. Building a catalog opens a database engine, so it is cached, and so are the
metadata files it parsed (``transaction.MeshSqlCatalog``).

pyiceberg's SQL catalog (with SQLAlchemy) is imported when a catalog is first built, not when a
code location loads.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

from mesh_assets.lakehouse.errors import storage_errors
from mesh_assets.settings import MeshSettings, Profile

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.catalog.sql import SqlCatalog


def _prepare(settings: MeshSettings) -> None:
    settings.configure_libraries()
    if settings.profile is Profile.LOCAL:
        settings.profile_home.mkdir(parents=True, exist_ok=True)
        (settings.profile_home / "warehouse").mkdir(parents=True, exist_ok=True)


@functools.cache
def _catalog(name: str, properties: tuple[tuple[str, str], ...]) -> SqlCatalog:
    from mesh_assets.lakehouse.transaction import MeshSqlCatalog

    return MeshSqlCatalog(name, **dict(properties))


def load_catalog(settings: MeshSettings) -> SqlCatalog:
    """The (cached) catalog for ``settings``."""
    _prepare(settings)
    with storage_errors(settings, "opening the Iceberg catalog"):
        return _catalog(settings.catalog_name, tuple(sorted(settings.catalog_properties().items())))


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    with contextlib.suppress(NamespaceAlreadyExistsError):  # a concurrent run created it first
        catalog.create_namespace_if_not_exists(namespace)


def read_table(settings: MeshSettings, identifier: str, columns: list[str] | None = None) -> pa.Table | None:
    """The current rows of ``namespace.table`` (``columns`` only, if given), or None if it does not exist.

    For readers outside a run (``mesh demo``'s summary, ``mesh validate``, dbt's staged models on the
    lake): the platform opens the catalog here, in ``lakehouse``, and nowhere else.
    """
    from pyiceberg.exceptions import NoSuchTableError

    with storage_errors(settings, f"reading {identifier}"):
        try:
            table = load_catalog(settings).load_table(identifier)
        except NoSuchTableError:
            return None
        return table.scan(selected_fields=tuple(columns) if columns else ("*",)).to_arrow()


def table_schema_and_properties(
    settings: MeshSettings, identifier: str
) -> tuple[dict[str, str], dict[str, str]] | None:
    """``({column: iceberg type}, table properties)`` of a published table, or None if it does not exist."""
    from pyiceberg.exceptions import NoSuchTableError

    with storage_errors(settings, f"reading {identifier}"):
        try:
            table = load_catalog(settings).load_table(identifier)
        except NoSuchTableError:
            return None
        return {f.name: str(f.field_type) for f in table.schema().fields}, dict(table.properties)
