"""The lake stack from a checkout a new user may pick, and what a failed start leaves behind.

Each test runs ``deploy/local/stack.sh`` on its own stack: a MESH_HOME inside a fresh 0700 directory
(what ``mktemp -d`` makes, and what ``/root`` is) and free loopback ports, so the default stack
(ports 3300/6789/7480/5433/8088) is never touched. The downloads come from the per-user cache that
every clone shares, so these tests do not fetch Trino again.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from ports import free_ports

from mesh_assets.settings import MeshSettings, Profile

pytestmark = pytest.mark.lake

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = REPO_ROOT / "deploy" / "local" / "stack.sh"
# a cold start bootstraps Ceph and starts Trino: minutes on a busy 2-core machine
UP_TIMEOUT = 1500
STACK_PORTS = ("ceph_mon", "ceph_mon_v1", "s3", "postgres", "trino")


@dataclass
class PrivateStack:
    """A lake stack whose MESH_HOME lies under a 0700 directory, on its own ports."""

    private_dir: Path
    settings: MeshSettings
    env: dict[str, str]

    @property
    def services_dir(self) -> Path:
        return self.settings.services_dir

    def run(self, *args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return self.run_script(str(STACK.relative_to(REPO_ROOT)), *args, timeout=timeout)

    def run_script(
        self, script: str, *args: str, timeout: float = UP_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """One service's script (``deploy/local/<service>.sh``) with this stack's settings."""
        return subprocess.run(
            ["bash", str(REPO_ROOT / script), *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def pg_root(self) -> Path | None:
        location = self.services_dir / "postgres" / "location"
        return Path(location.read_text().strip()) if location.exists() else None

    def processes(self) -> dict[int, str]:
        """Live processes of this stack: every daemon names one of its paths on its command line."""
        marks = [str(self.services_dir) + "/"]
        if (root := self.pg_root()) is not None:
            marks.append(str(root / "data"))
        found = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                threads = int((proc / "status").read_text().split("Threads:")[1].split()[0])
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError, ValueError):
                continue
            # a zombie main thread with live threads is a daemon still shutting down: it counts
            exited = state in {"Z", "X"} and threads <= 1
            if not exited and any(mark in cmdline for mark in marks) and "stack.sh" not in cmdline:
                found[int(proc.name)] = cmdline[:200]
        return found

    def listening(self) -> list[int]:
        open_ports = []
        for name in STACK_PORTS:
            port = getattr(self.settings.ports, name)
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    open_ports.append(port)
        return open_ports


@pytest.fixture(scope="module")
def private_stack() -> Iterator[PrivateStack]:
    # tempfile.mkdtemp makes the directory 0700, like `mktemp -d`; the checkout sits below it
    private_dir = Path(tempfile.mkdtemp(prefix="mesh-0700-"))
    assert private_dir.stat().st_mode & 0o777 == 0o700
    home = private_dir / "checkout" / ".mesh"
    ports = dict(zip(STACK_PORTS, free_ports(len(STACK_PORTS)), strict=True))
    overrides = {"MESH_HOME": str(home), **{f"MESH_PORT_{k.upper()}": str(v) for k, v in ports.items()}}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in overrides.items():
            mp.setenv(key, value)
        settings = MeshSettings.from_env(Profile.LAKE)
    env = {
        # the machine's PATH and HOME: apt, ceph, the per-user download cache
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", str(Path.home())),
        **{k: os.environ[k] for k in ("XDG_CACHE_HOME", "MESH_CACHE_DIR") if k in os.environ},
        **settings.shell_env(),
        "MESH_PYTHON": sys.executable,
        # a second stack on a 2-core machine: keep Trino small
        "MESH_TRINO_HEAP": "1G",
        "MESH_TRINO_QUERY_MEMORY": "512MB",
    }
    stack = PrivateStack(private_dir=private_dir, settings=settings, env=env)
    yield stack
    proc = stack.run("reset", "--all", timeout=600)
    leftovers = stack.processes()
    shutil.rmtree(private_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not leftovers, f"stack.sh reset left processes running: {leftovers}"


def test_the_stack_starts_from_a_checkout_under_a_0700_directory(private_stack: PrivateStack):
    proc = private_stack.run("up")
    assert proc.returncode == 0, proc.stderr[-6000:]

    status = private_stack.run("status", timeout=180)
    assert status.returncode == 0, status.stdout + status.stderr[-2000:]
    for service in ("postgres", "ceph", "trino"):
        assert f"{service}: healthy" in status.stdout, status.stdout

    # PostgreSQL's files (opened by the `postgres` user when we are root) are outside the 0700 tree
    pg_root = private_stack.pg_root()
    assert pg_root is not None and (pg_root / "data" / "PG_VERSION").exists()
    if os.geteuid() == 0:
        assert private_stack.private_dir not in pg_root.parents, pg_root
        assert (pg_root / "checkout").read_text().strip() == str(private_stack.services_dir)

    down = private_stack.run("down", timeout=600)
    assert down.returncode == 0, down.stderr[-3000:]
    assert private_stack.processes() == {}
    assert private_stack.listening() == []


def test_a_failed_start_stops_every_service_it_started_and_names_the_cause(private_stack: PrivateStack):
    """Trino's port is taken: PostgreSQL and Ceph start, Trino cannot, and nothing stays running."""
    trino_port = private_stack.settings.ports.trino
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", trino_port))
        blocker.listen()
        proc = private_stack.run("up")
    assert proc.returncode != 0, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f"trino: 127.0.0.1:{trino_port}, the trino port, is already in use" in last, proc.stderr[-3000:]
    assert "stopped" in last, last
    # PostgreSQL and Ceph were up before Trino failed, and were stopped again
    assert "stopping postgres" in proc.stderr and "stopping ceph-mon" in proc.stderr, proc.stderr[-3000:]
    assert private_stack.processes() == {}
    assert private_stack.listening() == []


def test_a_failure_while_starting_side_by_side_stops_the_other_service(private_stack: PrivateStack):
    """PostgreSQL's port is taken while Ceph starts beside it: Ceph is stopped too, at once."""
    pg_port = private_stack.settings.ports.postgres
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", pg_port))
        blocker.listen()
        proc = private_stack.run("up")
    assert proc.returncode != 0, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f"postgres: 127.0.0.1:{pg_port}, the postgres port, is already in use" in last, proc.stderr[-3000:]
    assert private_stack.processes() == {}
    assert private_stack.listening() == []


def _catalog_tables(settings: MeshSettings) -> list[tuple[str, str]]:
    engine = sa.create_engine(settings.catalog_uri())
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT table_namespace, table_name FROM iceberg_tables")).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def test_a_checkout_cloned_again_at_the_same_path_starts_with_an_empty_catalog(private_stack: PrivateStack):
    """The catalog of a deleted checkout must not survive into a new clone at the same path.

    As root the PostgreSQL cluster lives outside the checkout, under a folder named by the checkout's
    path; Ceph's data lives inside it. CI deletes and clones again at one path: a catalog kept from
    the previous clone lists tables whose metadata files are gone, and every write of them fails.
    A restart of the same checkout keeps its catalog.
    """
    postgres = "deploy/local/postgres.sh"
    row = "INSERT INTO iceberg_tables VALUES ('mesh', 'emissions', 'old', 's3://warehouse/x.json', NULL, 'TABLE')"
    up = private_stack.run_script(postgres, "up")
    assert up.returncode == 0, up.stderr[-3000:]
    engine = sa.create_engine(private_stack.settings.catalog_uri())
    with engine.begin() as conn:
        conn.execute(sa.text(row))
    engine.dispose()
    for action in ("down", "up"):  # the same checkout restarted: its catalog stays
        proc = private_stack.run_script(postgres, action)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert _catalog_tables(private_stack.settings) == [("emissions", "old")]
    first_root = private_stack.pg_root()
    assert private_stack.run_script(postgres, "down").returncode == 0

    # the checkout's services (Ceph's data with them) deleted and made again at the same path; the
    # generated secrets are kept, so the old cluster would accept the login: only its data tells
    shutil.rmtree(private_stack.services_dir)
    again = private_stack.run_script(postgres, "up")
    assert again.returncode == 0, again.stderr[-3000:]
    try:
        assert _catalog_tables(private_stack.settings) == []
        if os.geteuid() == 0:
            assert private_stack.pg_root() == first_root
            assert "the catalog cluster of an earlier checkout at this path" in again.stderr, again.stderr[
                -3000:
            ]
    finally:
        private_stack.run_script(postgres, "down")


def test_mesh_infra_reset_deletes_nothing_without_yes(private_stack: PrivateStack):
    """Reset empties the catalog and the warehouse together: it needs an explicit --yes."""
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), "infra", "reset"],
        env=private_stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "deletes every table of the lake profile: add --yes" in proc.stderr
    assert private_stack.pg_root() is not None and (private_stack.pg_root() / "data" / "PG_VERSION").exists()
