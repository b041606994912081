"""Fixtures for the tests that need the local lake stack (Ceph S3, PostgreSQL, Trino).

The session fixture ``lake_stack`` runs ``deploy/local/stack.sh up`` once (a quick no-op when the
stack already runs) and leaves the stack running afterwards. When the stack cannot start the tests
fail; locally, ``MESH_SKIP_LAKE=1`` skips them instead (never under ``CI=true``).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# RGW rejects the streaming checksums that recent AWS SDKs (boto3, pyarrow's S3 client) send by
# default: every S3 client process of the platform needs these, before its first S3 call.
os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "WHEN_REQUIRED")

from mesh_assets.settings import MeshSettings, Profile

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = REPO_ROOT / "deploy" / "local" / "stack.sh"
STACK_UP_TIMEOUT = int(os.environ.get("MESH_LAKE_UP_TIMEOUT", "1500"))


def run_stack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run deploy/local/stack.sh with the test process's environment."""
    return subprocess.run(
        [str(STACK), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# Tests that restart a service: they run after every other test of the session so that clients
# cached by other tests (without reconnect logic) are not disturbed.
DISRUPTIVE = {"test_clients_survive_a_postgres_restart"}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.originalname in DISRUPTIVE)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def lake_stack() -> MeshSettings:
    """The running lake stack's settings (profile ``lake``)."""
    if os.environ.get("MESH_SKIP_LAKE") == "1" and not _in_ci():
        pytest.skip("MESH_SKIP_LAKE=1: lake stack tests skipped")
    start = time.monotonic()
    try:
        proc = run_stack("up", timeout=STACK_UP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"deploy/local/stack.sh up did not finish in {STACK_UP_TIMEOUT}s:\n{exc.stderr}", pytrace=False
        )
    if proc.returncode != 0:
        pytest.fail(
            f"deploy/local/stack.sh up failed (exit {proc.returncode}) after {time.monotonic() - start:.0f}s:\n"
            f"{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}",
            pytrace=False,
        )
    return MeshSettings.from_env(Profile.LAKE)


@pytest.fixture(scope="session")
def stack_cli():
    """``stack_cli("status")`` runs deploy/local/stack.sh and returns the CompletedProcess."""
    return run_stack


@pytest.fixture(scope="session")
def catalog(lake_stack: MeshSettings):
    from pyiceberg.catalog.sql import SqlCatalog

    # catalog_properties() sets pool_pre_ping: a session-long catalog survives a PostgreSQL restart
    return SqlCatalog(lake_stack.catalog_name, **lake_stack.catalog_properties())


@pytest.fixture(scope="session")
def trino_conn(lake_stack: MeshSettings):
    import trino

    conn = trino.dbapi.connect(
        host=lake_stack.host,
        port=lake_stack.ports.trino,
        user=lake_stack.trino_user,
        catalog=lake_stack.trino_catalog,
        http_scheme="http",
        request_timeout=120,
    )
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def trino_sql(trino_conn):
    """Run one statement in Trino and return all rows."""

    def run(sql: str) -> list[list]:
        cur = trino_conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    return run


@pytest.fixture(scope="session")
def s3(lake_stack: MeshSettings):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=lake_stack.s3_endpoint,
        aws_access_key_id=lake_stack.secret("s3_access_key"),
        aws_secret_access_key=lake_stack.secret("s3_secret_key"),
        region_name=lake_stack.s3_region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="session")
def namespace(catalog, trino_sql) -> Iterator[str]:
    """A fresh namespace (Trino schema) for this session; its tables are dropped at the end."""
    name = f"lake_test_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(name)
    yield name
    for table in trino_sql(f'SHOW TABLES FROM "{name}"'):
        try:
            trino_sql(f'DROP TABLE IF EXISTS "{name}"."{table[0]}"')
        except Exception:
            trino_sql(f'DROP VIEW IF EXISTS "{name}"."{table[0]}"')
    trino_sql(f'DROP SCHEMA IF EXISTS "{name}"')
