"""The deploy/local scripts themselves: status, idempotent `up`, loopback-only, no secrets in logs."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lake


def _pg_data(services_dir: Path) -> Path:
    """PostgreSQL's data directory: where postgres.sh recorded it (outside the checkout as root)."""
    location = services_dir / "postgres" / "location"
    root = Path(location.read_text().strip()) if location.exists() else services_dir / "postgres"
    return root / "data"


def _pids(services_dir: Path) -> dict[str, str]:
    files = {
        "postgres": _pg_data(services_dir) / "postmaster.pid",
        "trino": services_dir / "trino/run/trino.pid",
        **{f"ceph-{d}": services_dir / f"ceph/run/{d}.pid" for d in ("mon", "mgr", "osd", "rgw")},
    }
    return {name: f.read_text().splitlines()[0].strip() for name, f in files.items()}


def test_status_reports_every_service_healthy(lake_stack, stack_cli):
    proc = stack_cli("status", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines() if ":" in line}
    for service in ("postgres", "ceph", "trino"):
        assert "healthy" in lines.get(service, ""), proc.stdout


def test_up_again_is_a_quick_no_op(lake_stack, stack_cli):
    before = _pids(lake_stack.services_dir)
    start = time.monotonic()
    proc = stack_cli("up", timeout=300)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _pids(lake_stack.services_dir) == before, "a healthy service was restarted"
    assert proc.stderr.count("already running and healthy") == 3, proc.stderr
    assert elapsed < 60, f"idempotent up took {elapsed:.1f}s"


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_services_listen_on_loopback_only(lake_stack):
    assert lake_stack.host == "127.0.0.1", "this check assumes the default MESH_HOST"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1 (v4, v4-mapped v6)
    for name in ("postgres", "s3", "trino", "ceph_mon", "ceph_mon_v1"):
        addrs = _listening(getattr(lake_stack.ports, name))
        assert addrs, f"nothing listens on the {name} port"
        assert addrs <= loopback, f"{name} listens on {addrs}"


def test_no_secret_in_service_logs_or_configs(lake_stack):
    names = ("pg_password", "s3_access_key", "s3_secret_key", "dagster_pg_password")
    secrets = [lake_stack.secret(n) for n in names]
    # each domain's own catalog password (the stack provisions them at start)
    domains = sorted(p.name for p in (lake_stack.secrets_dir / "domains").iterdir())
    assert domains, "the stack provisioned no domain principal"
    secrets += [lake_stack.domain_secret(d, "pg_password") for d in domains]
    root = lake_stack.services_dir
    candidates = [
        *root.glob("*/log/*"),
        *root.glob("trino/etc/**/*.properties"),
        root / "ceph/ceph.conf",
        root / "trino/etc/jvm.config",
    ]
    for path in candidates:
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a secret appears in {path}"


def test_clients_survive_a_postgres_restart(lake_stack, trino_sql):
    """Trino's JDBC catalog reconnects (retryable SQL states) and pyiceberg with pool_pre_ping does."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(lake_stack.catalog_name, **lake_stack.catalog_properties())
    catalog.list_namespaces()
    trino_sql(f'SHOW SCHEMAS FROM "{lake_stack.trino_catalog}"')
    script = Path(__file__).resolve().parents[2] / "deploy/local/postgres.sh"
    for action in ("down", "up"):
        proc = subprocess.run([str(script), action], capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert ["information_schema"] in trino_sql(f'SHOW SCHEMAS FROM "{lake_stack.trino_catalog}"')
    catalog.list_namespaces()
    catalog.engine.dispose()
