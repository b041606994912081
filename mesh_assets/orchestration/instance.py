"""The persistent Dagster instance of a profile: SQLite under ``.mesh`` locally, PostgreSQL on the lake.

``mesh demo``, ``mesh ui`` and the tests all use this instance, so runs launched from the CLI are
the runs the UI shows. The PostgreSQL URL (with its password) is referenced as
``{env: MESH_DAGSTER_PG_URL}`` in ``dagster.yaml`` and reaches the Dagster processes through the
explicit environment they are started with (:func:`instance_env`), like the S3 keys of the lake's
run logs (S3ComputeLogManager on the Ceph gateway); they are never written to a file, logged, or put
into this process's environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import yaml

from mesh_assets.orchestration.dagster_internals import DEFAULT_RUN_COORDINATOR, instance_from_dir
from mesh_assets.settings import COMPUTE_LOG_PREFIX, GENERATED_SECRETS, MeshSettings, Profile

if TYPE_CHECKING:
    import dagster as dg

PG_URL_VARIABLE = "MESH_DAGSTER_PG_URL"


def instance_config(settings: MeshSettings) -> dict:
    config: dict = {
        "telemetry": {"enabled": False},
        # Runs launch at once, with or without a daemon, so `mesh demo` needs no background process.
        "run_coordinator": dict(DEFAULT_RUN_COORDINATOR),
        "code_servers": {"local_startup_timeout": 180},
        # The daemon's freshness thread turns each contract's latency SLA (FreshnessPolicy) into a
        # pass / warn / fail state the UI shows (on by default in Dagster 1.13; stated, not implied).
        "freshness": {"enabled": True},
    }
    if settings.profile is Profile.LAKE:
        # A full URL pins the psycopg2 driver (SQLAlchemy 2.x may default postgresql:// to psycopg 3,
        # which dagster-postgres's NOTIFY statements do not work with). It holds the password, so
        # it is referenced from the environment, never written here.
        config["storage"] = {"postgres": {"postgres_url": {"env": PG_URL_VARIABLE}}}
        # Run logs (each step's stdout/stderr) in the lake's object store, not on one machine's disk:
        # dagster-aws's S3ComputeLogManager on the Ceph gateway. Its boto3 client takes no
        # addressing option, so path-style (what RGW serves without wildcard DNS) and RGW's checksum
        # rules come from the AWS config file of instance_env; the keys come from the environment.
        config["compute_logs"] = {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {
                "bucket": settings.s3_bucket,
                "prefix": COMPUTE_LOG_PREFIX,
                "endpoint_url": settings.s3_endpoint,
                "region": settings.s3_region,
                "use_ssl": settings.s3_endpoint.startswith("https://"),
                "skip_empty_files": True,
                "upload_interval": 30,
            },
        }
    return config


# The AWS SDK settings every boto3 client of the Dagster processes gets in the lake profile.
AWS_CONFIG = """\
[default]
s3 =
    addressing_style = path
request_checksum_calculation = when_required
response_checksum_validation = when_required
"""


def dagster_pg_url(settings: MeshSettings) -> str:
    """The instance database's URL, as its own role (``mesh access provision`` creates it): every
    Dagster process holds it, a domain's code server too, so it is not the catalog's owner."""
    password = quote(settings.secret("dagster_pg_password"), safe="")
    return (
        f"postgresql+psycopg2://{settings.pg_dagster_user}:{password}@{settings.host}:{settings.ports.postgres}/"
        f"{settings.pg_dagster_db}"
    )


def write_instance(settings: MeshSettings, dagster_home: Path | None = None) -> Path:
    """Write ``dagster.yaml`` of the profile's instance (idempotent); its folder (``DAGSTER_HOME``)."""
    home = Path(dagster_home or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = yaml.safe_dump(instance_config(settings), sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    if settings.profile is Profile.LAKE:
        aws = home / "aws-config"
        if not aws.exists() or aws.read_text() != AWS_CONFIG:
            aws.write_text(AWS_CONFIG)
    return home


def instance_env(settings: MeshSettings, dagster_home: Path | None = None) -> dict[str, str]:
    """What a Dagster process needs to open the instance: ``DAGSTER_HOME`` (and the lake's URL).

    The compute log manager's S3 keys are those of ``settings``' principal: a domain's code server
    (and the runs it launches, its children) gets its own domain's keys, whose bucket policy lets
    it write run logs and read none but its own; the webserver and the daemon, the platform's, read them all.
    """
    home = Path(dagster_home or settings.dagster_home)
    env = {"DAGSTER_HOME": str(home)}
    if settings.profile is Profile.LAKE:
        env[PG_URL_VARIABLE] = dagster_pg_url(settings)
        # the compute log manager's boto3 client, path-style (the config file written by write_instance)
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = settings.s3_credentials()
        env["AWS_CONFIG_FILE"] = str(home / "aws-config")
    return env


def location_env(
    settings: MeshSettings,
    domain: str,
    dagster_home: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a code server of ``domain`` (and so of the runs it launches).

    In the lake, a provisioned domain's server gets its own principal's credentials only: the
    instance's and its domain's keys, not the platform's secrets (those given as ``MESH_<SECRET>``
    are left out too). A location of no provisioned domain gets the platform's environment.
    """
    scoped = settings.for_domain(domain)
    env = scoped.process_env({**instance_env(scoped, dagster_home), **(extra or {})})
    if scoped.principal:
        for name in GENERATED_SECRETS:
            env.pop(f"MESH_{name.upper()}", None)
    return env


@contextlib.contextmanager
def open_instance(settings: MeshSettings, dagster_home: Path | None = None) -> Iterator[dg.DagsterInstance]:
    """The profile's instance opened in this process, to read it (runs, event log) or to create it.

    The lake's URL is handed over as a config override: this process's environment is left alone.
    """
    home = write_instance(settings, dagster_home)
    overrides = None
    if settings.profile is Profile.LAKE:
        overrides = {"storage": {"postgres": {"postgres_url": dagster_pg_url(settings)}}}
    with instance_from_dir(home, overrides) as instance:
        yield instance
