"""The Iceberg catalog of a profile, built once per process.

Both profiles use pyiceberg's SQL catalog: SQLite in ``local``, PostgreSQL in ``lake``, where it
is the very same JDBC catalog Trino's Iceberg connector reads, so a table written here is a
table Trino sees. Building a catalog opens a database engine, so it is cached.
"""

from __future__ import annotations

import contextlib
import functools
import os

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError

from mesh_assets.settings import MeshSettings, Profile, get_settings


class CatalogUnavailableError(RuntimeError):
    """The catalog database or the object store cannot be reached; the message says what to fix."""


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
    return SqlCatalog(name, **dict(properties))


def load_catalog(settings: MeshSettings | None = None) -> SqlCatalog:
    """The (cached) catalog for ``settings`` (default: the current environment's)."""
    settings = settings or get_settings()
    _prepare_environment(settings)
    properties = settings.catalog_properties()
    try:
        return _catalog(settings.catalog_name, tuple(sorted(properties.items())))
    except Exception as exc:  # sqlalchemy raises driver-specific errors; translate them once, here
        raise CatalogUnavailableError(describe_catalog_error(exc, settings)) from exc


def describe_catalog_error(exc: BaseException, settings: MeshSettings) -> str:
    """One actionable sentence for a catalog failure, without credentials."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = settings.catalog_uri(with_password=False)
    if settings.profile is Profile.LAKE:
        if "password authentication failed" in text or "authentication" in text.lower():
            hint = "the catalog database rejected the credentials: check MESH_PG_PASSWORD / the pg_password secret"
        elif "does not exist" in text and "database" in text:
            hint = f"the catalog database {settings.pg_catalog_db!r} does not exist: run `mesh infra up`"
        elif "Connection refused" in text or "could not connect" in text or "timeout" in text.lower():
            hint = "the catalog database is not reachable: start it with `mesh infra up` (or check MESH_PORT_POSTGRES)"
        else:
            hint = "the Iceberg catalog could not be opened"
    else:
        hint = f"the local catalog could not be opened (is {settings.profile_home} writable?)"
    return f"{hint} [{where}]: {text}"


def ensure_namespace(catalog: SqlCatalog, namespace: str) -> None:
    with contextlib.suppress(NamespaceAlreadyExistsError):  # a concurrent run created it first
        catalog.create_namespace_if_not_exists(namespace)
