"""The Iceberg catalog of a profile, built once per process.

Both profiles use pyiceberg's SQL catalog: SQLite in ``local``, PostgreSQL in ``lake``, where it
is the very same JDBC catalog Trino's Iceberg connector reads, so a table written here is a
table Trino sees. Building a catalog opens a database engine, so it is cached.

pyiceberg's SQL catalog (with SQLAlchemy) is imported when a catalog is first built, not when a
code location loads.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import TYPE_CHECKING

from mesh_assets.lakehouse.errors import storage_errors
from mesh_assets.settings import MeshSettings, Profile, get_settings

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog


def _prepare_environment(settings: MeshSettings) -> None:
    if settings.profile is Profile.LAKE:
        # The Ceph gateway rejects the streaming checksums newer AWS clients (pyarrow's among
        # them) send by default (HTTP 411 on UploadPart): only send them when required.
        os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
        os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "WHEN_REQUIRED")
    else:
        settings.profile_home.mkdir(parents=True, exist_ok=True)
        (settings.profile_home / "warehouse").mkdir(parents=True, exist_ok=True)


@functools.cache
def _catalog(name: str, properties: tuple[tuple[str, str], ...]) -> SqlCatalog:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(name, **dict(properties))


def load_catalog(settings: MeshSettings | None = None) -> SqlCatalog:
    """The (cached) catalog for ``settings`` (default: the current environment's)."""
    settings = settings or get_settings()
    _prepare_environment(settings)
    with storage_errors(settings, "opening the Iceberg catalog"):
        return _catalog(settings.catalog_name, tuple(sorted(settings.catalog_properties().items())))


def ensure_namespace(catalog: SqlCatalog, namespace: str) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    with contextlib.suppress(NamespaceAlreadyExistsError):  # a concurrent run created it first
        catalog.create_namespace_if_not_exists(namespace)
