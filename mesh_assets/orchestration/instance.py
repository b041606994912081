"""The persistent Dagster instance of a profile: SQLite under ``.mesh`` locally, PostgreSQL on the lake.

``mesh demo``, ``mesh ui`` and the tests all use this instance, so runs launched from the CLI are
the runs the UI shows. The PostgreSQL URL (with its password) is referenced as ``{env: MESH_DAGSTER_PG_URL}`` in
``dagster.yaml``; the URL is put into the environment from the secrets file, never written out.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import yaml

from mesh_assets.settings import MeshSettings, Profile, get_settings


def instance_config(settings: MeshSettings) -> dict:
    config: dict = {
        "telemetry": {"enabled": False},
        # Runs launch at once, with or without a daemon, so `mesh demo` needs no background process.
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "code_servers": {"local_startup_timeout": 180},
        # The daemon's freshness thread turns each contract's latency SLA (FreshnessPolicy) into a
        # pass / warn / fail state the UI shows (on by default in Dagster 1.13; stated, not implied).
        "freshness": {"enabled": True},
    }
    if settings.profile is Profile.LAKE:
        # A full URL pins the psycopg2 driver (SQLAlchemy 2.1 defaults postgresql:// to psycopg 3,
        # which dagster-postgres's NOTIFY statements do not work with). It holds the password, so
        # it is referenced from the environment, never written here.
        config["storage"] = {"postgres": {"postgres_url": {"env": "MESH_DAGSTER_PG_URL"}}}
    return config


def dagster_pg_url(settings: MeshSettings) -> str:
    password = quote(settings.secret("pg_password"), safe="")
    return (
        f"postgresql+psycopg2://{settings.pg_user}:{password}@{settings.host}:{settings.ports.postgres}/"
        f"{settings.pg_dagster_db}"
    )


def prepare_dagster_home(settings: MeshSettings | None = None) -> Path:
    """Write ``dagster.yaml`` for the profile (idempotent) and point ``DAGSTER_HOME`` at it."""
    settings = settings or get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = yaml.safe_dump(instance_config(settings), sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["MESH_PROFILE"] = settings.profile.value
    if settings.profile is Profile.LAKE:
        os.environ["MESH_DAGSTER_PG_URL"] = dagster_pg_url(settings)
    return home
