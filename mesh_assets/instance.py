"""The persistent Dagster instance of a profile: SQLite under ``.mesh`` locally, PostgreSQL on the lake.

``mesh demo``, ``mesh ui`` and the tests all use this instance, so runs launched from the CLI are
the runs the UI shows. The PostgreSQL password is referenced as ``{env: MESH_PG_PASSWORD}`` in
``dagster.yaml``; it is put into the environment from the secrets file, never written out.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mesh_assets.settings import MeshSettings, Profile, get_settings


def instance_config(settings: MeshSettings) -> dict:
    config: dict = {
        "telemetry": {"enabled": False},
        # Runs launch at once, with or without a daemon, so `mesh demo` needs no background process.
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "code_servers": {"local_startup_timeout": 180},
    }
    if settings.profile is Profile.LAKE:
        config["storage"] = {
            "postgres": {
                "postgres_db": {
                    "hostname": settings.host,
                    "port": settings.ports.postgres,
                    "username": settings.pg_user,
                    "password": {"env": "MESH_PG_PASSWORD"},
                    "db_name": settings.pg_dagster_db,
                }
            }
        }
    return config


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
    if settings.profile is Profile.LAKE and "MESH_PG_PASSWORD" not in os.environ:
        os.environ["MESH_PG_PASSWORD"] = settings.secret("pg_password")
    return home
