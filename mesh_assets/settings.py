"""Platform settings: one place for profiles, paths, service ports and credentials.

Everything the platform needs to know about *where* things live comes from here, read from the
environment (``MESH_*`` variables) with defaults that make the embedded ``local`` profile work
with no server at all. The shell scripts under ``deploy/local/`` read the same values through
``python -m mesh_assets.settings env`` so that a port is defined once, here.

Settings flow one way. This is the only module that reads ``os.environ``, and only when an edge
asks it to: the CLI, a code location's load (``mesh_assets.definitions``), the dbt-duckdb plugin in
dbt's process. The result is one frozen :class:`MeshSettings` that every other part receives as an
argument or through the ``mesh`` Dagster resource (:class:`mesh_assets.resources.MeshResource`).
Nothing writes settings back into the environment: a subprocess gets ``env=settings.process_env()``.

Secrets (database and S3 credentials) are never defaults in code: they come from the
environment captured with the settings or from files under ``$MESH_HOME/secrets`` that
``mesh infra up`` creates with mode 0600. They are kept out of ``repr`` so they do not leak into
logs or Dagster metadata.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import secrets
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# where the lake profile's run logs (each step's stdout/stderr) live in the warehouse bucket
COMPUTE_LOG_PREFIX = "dagster/compute-logs"


class Profile(enum.StrEnum):
    """Where the lakehouse lives.

    ``local``: pyiceberg's SQL catalog on SQLite and a warehouse folder, no servers.
    ``lake``: a PostgreSQL catalog (shared with Trino's Iceberg JDBC catalog) and an S3 warehouse
    on the Ceph RADOS Gateway.
    """

    LOCAL = "local"
    LAKE = "lake"


# Every loopback port the platform uses, in one table. Trino and Airflow both default to 8080
# upstream, so neither keeps its default here. Override any of them with MESH_PORT_<NAME>.
DEFAULT_PORTS: dict[str, int] = {
    "ceph_mon": 3300,
    "ceph_mon_v1": 6789,
    "s3": 7480,
    "postgres": 5433,
    "trino": 8088,
    "airflow": 8089,
    "dagster_webserver": 3070,
    # the local Kubernetes control plane of deploy/local/k8s.sh (the chart's tests)
    "k8s": 6443,
    "etcd": 2379,
    "etcd_peer": 2380,
}


def _get(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name)
    return value if value else default


def _int(environ: Mapping[str, str], name: str, default: int, what: str = "a whole number") -> int:
    raw = _get(environ, name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not {what}") from None


@dataclass(frozen=True)
class Ports:
    values: dict[str, int]

    def __getattr__(self, name: str) -> int:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"no port named {name!r}; known: {sorted(self.values)}") from None

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.values.items())))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        return cls(
            {
                name: _int(environ, f"MESH_PORT_{name.upper()}", default, "a port number")
                for name, default in DEFAULT_PORTS.items()
            }
        )


@dataclass(frozen=True)
class MeshSettings:
    """Resolved settings. Build with :func:`get_settings` (cached) or :meth:`from_env`."""

    profile: Profile
    home: Path
    raw_dir: Path
    ports: Ports
    host: str = "127.0.0.1"
    s3_bucket: str = "warehouse"
    s3_region: str = "us-east-1"
    # the platform's own gateway user (the warehouse bucket's owner; Trino's and the CLI's keys)
    s3_user: str = "mesh"
    pg_user: str = "mesh"
    pg_catalog_db: str = "iceberg_catalog"
    pg_dagster_db: str = "dagster"
    # the Dagster instance's own role (runs, events, schedules): every Dagster process holds its
    # password, domains' included, so it is not the catalog's owner and may not read the catalog
    pg_dagster_user: str = "dagster"
    catalog_name: str = "mesh"
    trino_catalog: str = "iceberg"
    trino_user: str = "mesh"
    # Minimum seconds between two ticks of a domain's cross-domain trigger sensor
    # (mesh_assets/orchestration/automation.py); MESH_TRIGGER_INTERVAL. The sensor daemon loops every 5 s at most.
    trigger_interval: int = 15
    # The OpenMetadata server the mesh exports itself to (``mesh lineage export``, the platform
    # location's sensor); MESH_OPENMETADATA_URL. Its JWT is the secret ``openmetadata_token``.
    openmetadata_url: str | None = None
    # The domain whose code this process runs, set by a domain's code location when it loads
    # (never read from the environment): in ``lake`` its connections use that domain's own
    # credentials (:meth:`domain_credentials_ready`), which the stack provisions per domain.
    # Empty: the platform itself (CLI, platform location, tests), with the platform's credentials.
    principal: str = ""
    # The environment the settings were read from: what subprocesses inherit (PATH, HOME, ...) and
    # where MESH_<SECRET> credentials come from. Never shown: it may hold secrets.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_env(
        cls, profile: str | Profile | None = None, environ: Mapping[str, str] | None = None
    ) -> MeshSettings:
        """Read the settings from ``environ`` (default: this process's environment), once."""
        env = dict(os.environ if environ is None else environ)
        raw_profile = str(profile or _get(env, "MESH_PROFILE", Profile.LOCAL.value)).lower()
        try:
            resolved = Profile(raw_profile)
        except ValueError:
            choices = ", ".join(p.value for p in Profile)
            raise ValueError(
                f"unknown profile {raw_profile!r} (MESH_PROFILE): choose one of {choices}"
            ) from None
        return cls(
            profile=resolved,
            home=Path(_get(env, "MESH_HOME", str(REPO_ROOT / ".mesh"))).resolve(),
            raw_dir=Path(_get(env, "MESH_RAW_DIR", str(REPO_ROOT / "data" / "raw"))).resolve(),
            ports=Ports.from_env(env),
            host=_get(env, "MESH_HOST", "127.0.0.1"),
            s3_bucket=_get(env, "MESH_S3_BUCKET", "warehouse"),
            trigger_interval=_int(env, "MESH_TRIGGER_INTERVAL", 15),
            openmetadata_url=env.get("MESH_OPENMETADATA_URL") or None,
            environ=env,
        )

    def replace(self, **changes: Any) -> MeshSettings:
        """A copy with ``changes`` (e.g. ``profile=Profile.LAKE``, ``home=tmp``)."""
        if "profile" in changes:
            changes["profile"] = Profile(str(changes["profile"]).lower())
        for name in ("home", "raw_dir"):
            if name in changes:
                changes[name] = Path(changes[name]).resolve()
        return dataclasses.replace(self, **changes)

    # ---- what a Dagster resource carries (no secrets) ------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The non-secret settings as plain values: the ``mesh`` resource's config."""
        return {
            "profile": self.profile.value,
            "home": str(self.home),
            "raw_dir": str(self.raw_dir),
            "host": self.host,
            "ports": dict(self.ports.values),
            "s3_bucket": self.s3_bucket,
            "trigger_interval": self.trigger_interval,
            "openmetadata_url": self.openmetadata_url or "",
            "principal": self.principal,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> MeshSettings:
        """Settings from :meth:`to_config` values; ``environ`` supplies only secrets and the process env."""
        return cls(
            profile=Profile(config["profile"]),
            home=Path(config["home"]),
            raw_dir=Path(config["raw_dir"]),
            ports=Ports({**DEFAULT_PORTS, **config["ports"]}),
            host=config["host"],
            s3_bucket=config["s3_bucket"],
            trigger_interval=int(config["trigger_interval"]),
            openmetadata_url=config.get("openmetadata_url") or None,
            principal=config.get("principal") or "",
            environ=dict(os.environ if environ is None else environ),
        )

    # ---- paths -------------------------------------------------------------------------------
    @property
    def profile_home(self) -> Path:
        return self.home / self.profile.value

    @property
    def dagster_home(self) -> Path:
        return self.profile_home / "dagster"

    @property
    def services_dir(self) -> Path:
        return self.home / "services"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    # ---- Iceberg catalog -------------------------------------------------------------------
    @property
    def warehouse(self) -> str:
        if self.profile is Profile.LOCAL:
            return (self.profile_home / "warehouse").as_uri()
        return f"s3://{self.s3_bucket}/iceberg"

    @property
    def catalog_user(self) -> str:
        """The catalog database role this process connects as: its domain's, else the platform's."""
        return domain_role(self.principal) if self.principal else self.pg_user

    @property
    def query_user(self) -> str:
        """The Trino user this process queries as: its domain's principal, else the platform's."""
        return domain_role(self.principal) if self.principal else self.trino_user

    def catalog_uri(self, *, with_password: bool = True) -> str:
        if self.profile is Profile.LOCAL:
            return f"sqlite:///{self.profile_home / 'catalog.db'}"
        if not with_password:
            password = "***"
        elif self.principal:
            password = self.domain_secret(self.principal, "pg_password")
        else:
            password = self.secret("pg_password")
        return (
            f"postgresql+psycopg2://{self.catalog_user}:{password}@{self.host}:{self.ports.postgres}"
            f"/{self.pg_catalog_db}"
        )

    def landing_bucket(self, domain: str) -> str:
        """``domain``'s landing bucket, where its raw drops arrive (S3 bucket names allow no
        underscore: ``portfolio_alignment`` -> ``warehouse-landing-portfolio-alignment``)."""
        return f"{self.s3_bucket}-landing-{domain.replace('_', '-')}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    @property
    def trino_url(self) -> str:
        return f"http://{self.host}:{self.ports.trino}"

    def catalog_properties(self) -> dict[str, str]:
        """Properties for ``pyiceberg.catalog.sql.SqlCatalog`` (includes credentials: never log them)."""
        # pool_pre_ping: a catalog database restart must not surface as a stale pooled connection.
        props = {"uri": self.catalog_uri(), "warehouse": self.warehouse, "pool_pre_ping": "true"}
        if self.profile is Profile.LAKE:
            access_key, secret_key = self.s3_credentials()  # read once: two secret files
            props.update(
                {
                    "s3.endpoint": self.s3_endpoint,
                    "s3.access-key-id": access_key,
                    "s3.secret-access-key": secret_key,
                    "s3.region": self.s3_region,
                    "s3.force-virtual-addressing": "false",
                }
            )
        return props

    def s3_credentials(self) -> tuple[str, str]:
        """The warehouse's S3 keys for this process: its domain's own (a gateway user whose bucket
        policy lets it write its prefix and read what it consumes), else the platform's."""
        if self.principal:
            return (
                self.domain_secret(self.principal, "s3_access_key"),
                self.domain_secret(self.principal, "s3_secret_key"),
            )
        return self.secret("s3_access_key"), self.secret("s3_secret_key")

    # ---- secrets ---------------------------------------------------------------------------
    def secret(self, name: str) -> str:
        """A credential from ``MESH_<NAME>`` or ``$MESH_HOME/secrets/<name>``; never a code default."""
        value = self.environ.get(f"MESH_{name.upper()}")
        if value:
            return value
        path = self.secrets_dir / name
        if path.exists():
            return path.read_text().strip()
        raise RuntimeError(
            f"secret {name!r} is not set: export MESH_{name.upper()} or run `mesh infra up`, "
            f"which creates {path} (mode 0600)"
        )

    def domain_secrets_dir(self, domain: str) -> Path:
        return self.secrets_dir / "domains" / domain

    def domain_secret(self, domain: str, name: str) -> str:
        """A credential of ``domain``'s own principal: ``$MESH_HOME/secrets/domains/<domain>/<name>``.

        Written (mode 0600) by the stack's provisioning (``mesh access provision``), which creates
        the matching catalog role and object store user.
        """
        path = self.domain_secrets_dir(domain) / name
        if path.exists():
            return path.read_text().strip()
        raise RuntimeError(
            f"domain {domain!r} has no {name} at {path}: run `mesh infra up lake` (or "
            f"`mesh access provision`), which provisions every domain of the workspace"
        )

    def domain_credentials_ready(self, domain: str) -> bool:
        """Whether the stack provisioned ``domain``'s own principal (its credentials exist)."""
        folder = self.domain_secrets_dir(domain)
        return all((folder / name).exists() for name in GENERATED_SECRETS)

    def for_domain(self, domain: str) -> MeshSettings:
        """These settings as ``domain``'s code runs them: with its own credentials in ``lake``.

        A domain the stack has not provisioned yet (added after the stack started) keeps the
        platform's credentials until the next ``mesh infra up lake``; the caller warns.
        """
        if self.profile is Profile.LAKE and domain and self.domain_credentials_ready(domain):
            return self.replace(principal=domain)
        return self

    def ensure_domain_secrets(self, domain: str) -> None:
        """Create ``domain``'s generated credentials (mode 0600) if missing."""
        folder = self.domain_secrets_dir(domain)
        folder.mkdir(parents=True, exist_ok=True)
        for parent in (self.secrets_dir, folder.parent, folder):
            os.chmod(parent, 0o700)
        for name, make in GENERATED_SECRETS.items():
            _write_secret(folder / name, make)

    def ensure_secrets(self) -> None:
        """Create any missing generated secret file (used by ``mesh infra up``)."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        for name, make in {**GENERATED_SECRETS, **PLATFORM_ONLY_SECRETS}.items():
            if not self.environ.get(f"MESH_{name.upper()}"):
                _write_secret(self.secrets_dir / name, make)

    def shell_env(self) -> dict[str, str]:
        """The non-secret settings as environment variables for ``deploy/local`` scripts."""
        env = {
            "MESH_PROFILE": self.profile.value,
            "MESH_HOME": str(self.home),
            "MESH_SERVICES_DIR": str(self.services_dir),
            "MESH_SECRETS_DIR": str(self.secrets_dir),
            "MESH_HOST": self.host,
            "MESH_S3_BUCKET": self.s3_bucket,
            "MESH_S3_REGION": self.s3_region,
            "MESH_S3_UID": self.s3_user,
            "MESH_PG_USER": self.pg_user,
            "MESH_PG_CATALOG_DB": self.pg_catalog_db,
            "MESH_PG_DAGSTER_DB": self.pg_dagster_db,
            "MESH_TRINO_CATALOG": self.trino_catalog,
            "MESH_CATALOG_NAME": self.catalog_name,
            "MESH_REPO_ROOT": str(REPO_ROOT),
        }
        env.update({f"MESH_PORT_{k.upper()}": str(v) for k, v in self.ports.values.items()})
        env["MESH_RAW_DIR"] = str(self.raw_dir)
        env["MESH_TRIGGER_INTERVAL"] = str(self.trigger_interval)
        if self.openmetadata_url:
            env["MESH_OPENMETADATA_URL"] = self.openmetadata_url
        return env

    def library_env(self) -> dict[str, str]:
        """Variables that libraries read only from the process environment, for this profile.

        The AWS SDK inside pyarrow (pyiceberg's S3 file IO) sends streaming checksums by default,
        which the Ceph gateway rejects (HTTP 411 on UploadPart); it has no option for it but
        these variables.
        """
        if self.profile is not Profile.LAKE:
            return {}
        return {
            "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
        }

    def configure_libraries(self) -> None:
        """Give this process the :meth:`library_env` defaults (never overriding a value already set).

        The one write to ``os.environ`` in the platform, for libraries that read nothing else;
        called where the lake's object store is first opened (``lakehouse.catalog``).
        """
        for key, value in self.library_env().items():
            os.environ.setdefault(key, value)

    def process_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a subprocess that must resolve these very settings.

        The captured environment (PATH, HOME, credentials given as ``MESH_<SECRET>``) overlaid with
        every setting as its ``MESH_*`` variable, then ``extra``. Passed as ``env=``, never by
        changing ``os.environ``.
        """
        return {**self.library_env(), **self.environ, **self.shell_env(), **(extra or {})}


# The credentials the platform generates (the platform's, and each domain principal's).
GENERATED_SECRETS: dict[str, Callable[[], str]] = {
    "pg_password": lambda: secrets.token_urlsafe(18),
    "s3_access_key": lambda: "MESH" + secrets.token_hex(8).upper(),
    "s3_secret_key": lambda: secrets.token_urlsafe(30),
}

# The platform's alone: the Dagster instance role's password (mesh access provision sets it).
PLATFORM_ONLY_SECRETS: dict[str, Callable[[], str]] = {
    "dagster_pg_password": GENERATED_SECRETS["pg_password"]
}


def _write_secret(path: Path, make: Callable[[], str]) -> None:
    """Create ``path`` (mode 0600 from the start, never readable by others) unless it exists."""
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make() + "\n")


def domain_role(domain: str) -> str:
    """The database role (and Trino user) of ``domain``'s own principal."""
    return f"mesh_{domain}"


def domain_s3_user(domain: str) -> str:
    """The object store (gateway) user of ``domain``'s own principal: its catalog role's twin."""
    return f"mesh-{domain}"


@functools.cache
def _cached(profile: str | None, env_key: tuple[tuple[str, str], ...]) -> MeshSettings:
    return MeshSettings.from_env(profile, dict(env_key))


def get_settings(profile: str | Profile | None = None) -> MeshSettings:
    """The settings of this process's environment (for ``profile``, default ``MESH_PROFILE``).

    For edges only (the CLI, a code location's load, a tool's entry point): everything below them
    receives the settings they resolved. Cached per environment, so repeated loads are free.
    """
    return _cached(str(profile) if profile else None, tuple(sorted(os.environ.items())))


def _main(argv: list[str]) -> int:
    if argv[:1] != ["env"]:
        print(
            "usage: python -m mesh_assets.settings env   # export lines for deploy/local scripts",
            file=sys.stderr,
        )
        return 2
    for key, value in get_settings().shell_env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
