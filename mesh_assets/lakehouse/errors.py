"""One clear error per storage failure, naming what to fix.

Catalog and object-store failures surface deep inside sqlalchemy, psycopg2, pyarrow or boto
with pages of traceback. The IO manager runs every storage call inside :func:`storage_errors`,
which turns the known failure modes into one :class:`StorageError` sentence that says which
service failed and what to do, without credentials, and drops the chained traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mesh_assets.lakehouse.access import AccessDenied
from mesh_assets.settings import MeshSettings, Profile, domain_s3_user

INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE: the catalog database refused the role


class StorageError(RuntimeError):
    """The catalog database or the object store failed; the message says what to fix."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def describe(exc: BaseException, settings: MeshSettings) -> str | None:
    """A one-sentence diagnosis for a known storage failure, or None for anything else."""
    text = str(exc)
    lower = text.lower()
    squashed = lower.replace("_", "").replace(" ", "")  # AWS codes come as NoSuchBucket or NO_SUCH_BUCKET
    module = type(exc).__module__ or ""
    catalog = settings.catalog_uri(with_password=False)
    if module.startswith(("sqlalchemy", "psycopg2")):
        if "password authentication failed" in lower or "authentication failed" in lower:
            where = (
                f"{settings.domain_secrets_dir(settings.principal) / 'pg_password'} (`mesh access provision` "
                "sets it again)"
                if settings.principal
                else f"MESH_PG_PASSWORD or {settings.secrets_dir / 'pg_password'}"
            )
            return f"the Iceberg catalog database rejected the credentials [{catalog}]: check {where}"
        if "does not exist" in lower and "database" in lower:
            return f"the Iceberg catalog database does not exist [{catalog}]: run `mesh infra up`"
        if any(
            s in lower
            for s in (
                "connection refused",
                "could not connect",
                "server closed",
                "timeout",
                "terminating connection",
            )
        ):
            where = (
                "start it with `mesh infra up`"
                if settings.profile is Profile.LAKE
                else "check the catalog file"
            )
            return f"the Iceberg catalog database is not reachable [{catalog}]: {where} ({_first_line(exc)})"
        if "database is locked" in lower:
            return f"the local catalog is locked by another writer [{catalog}]: retry when it finishes"
        return None
    if isinstance(exc, FileNotFoundError) and ".metadata.json" in lower:
        # the catalog names a metadata file the warehouse does not have: they are out of step
        fix = (
            "empty both with `mesh infra reset --yes`"
            if settings.profile is Profile.LAKE
            else f"delete {settings.profile_home} to empty both"
        )
        return (
            f"the catalog [{catalog}] lists a table whose metadata file is missing from the warehouse "
            f"{settings.warehouse} ({_first_line(exc)}): the catalog and the warehouse were reset or "
            f"restored one without the other; restore the missing one, or {fix} and materialize again"
        )
    if (
        settings.profile is Profile.LAKE and isinstance(exc, OSError | ConnectionError)
    ) or "aws error" in lower:
        endpoint, bucket = settings.s3_endpoint, settings.s3_bucket
        if "nosuchbucket" in squashed or "bucketdoesnotexist" in squashed:
            return f"the warehouse bucket {bucket!r} does not exist on {endpoint}: run `mesh infra up` to create it"
        if any(
            s in squashed
            for s in ("invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied", "forbidden")
        ):
            return (
                f"the object store at {endpoint} rejected the S3 credentials: check MESH_S3_ACCESS_KEY/"
                f"MESH_S3_SECRET_KEY or the files under {settings.secrets_dir}"
            )
        if any(
            s in lower
            for s in (
                "connection refused",
                "couldn't connect",
                "could not connect",
                "failed to connect",
                "curlcode: 7",
                "connection reset",
                "timed out",
                "curl error",
            )
        ):
            return f"the object store (S3 gateway) at {endpoint} is not reachable: start it with `mesh infra up` ({_first_line(exc)})"
    return None


def _object_store_refusal(exc: BaseException) -> bool:
    squashed = str(exc).lower().replace("_", "").replace(" ", "")
    return isinstance(exc, OSError) and ("accessdenied" in squashed or "forbidden" in squashed)


@contextlib.contextmanager
def storage_errors(settings: MeshSettings, action: str) -> Iterator[None]:
    """Re-raise known storage failures during ``action`` as one :class:`StorageError` sentence."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if settings.principal and _object_store_refusal(exc):
            # the bucket policy (from the contracts) refused this domain's own gateway user
            raise AccessDenied(
                f"{action}: refused by the object store to domain:{settings.principal} (object store user "
                f"{domain_s3_user(settings.principal)}): its bucket policy lets a domain write its own namespace and read "
                f"the products whose contracts list it ({_first_line(exc)})"
            ) from None
        if getattr(getattr(exc, "orig", None), "pgcode", None) == INSUFFICIENT_PRIVILEGE:
            # the database's own refusal (a domain's role writing outside its namespace): its sentence
            raise AccessDenied(f"{_first_line(exc.orig)} (refused by the catalog database)") from None  # type: ignore[attr-defined]
        message = describe(exc, settings)
        if message is None:
            raise
        raise StorageError(f"{action}: {message}") from None
