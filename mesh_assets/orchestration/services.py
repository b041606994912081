"""Dagster's long-running services on the mesh: one code server per domain, the webserver, the daemon.

``DagsterServices`` starts, on loopback and with the profile's persistent instance (SQLite under
``.mesh/<profile>/dagster`` locally, PostgreSQL on the lake):

* one ``dagster code-server start`` per code location of ``workspace.yaml`` (a Unix socket each):
  the webserver and the daemon share them, as one deployment per domain would be shared, so a
  code location reloaded from the UI (or GraphQL ``reloadRepositoryLocation``) is reloaded for
  the daemon's sensors too;
* ``dagster-webserver`` on the ``dagster_webserver`` port setting (or ``webserver_port``; 0 picks
  a free port);
* ``dagster-daemon run`` (sensors, schedules, the freshness evaluation of SLAs), unless ``daemon=False``.

Every process gets its environment explicitly, built from the settings
(``settings.process_env()`` plus the instance's ``DAGSTER_HOME``), is in one process group that
``stop()`` ends (SIGINT, then SIGTERM, then SIGKILL), and logs to ``<MESH_HOME>/<profile>/logs/``.
Talking to the running services is :class:`~mesh_assets.orchestration.client.DagsterClient`'s job
(``services.client``)::

    with DagsterServices(settings, daemon=True) as svc:
        run_id = svc.client.launch_assets("companies", [["companies", "company_master"]])

Secrets: the PostgreSQL URL of the lake instance reaches the processes only through their
environment (``MESH_DAGSTER_PG_URL``, referenced by ``dagster.yaml``); it is never logged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mesh_assets.orchestration.client import DagsterClient
from mesh_assets.orchestration.dagster_internals import ping_code_server
from mesh_assets.orchestration.instance import instance_env, open_instance, write_instance
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import locations

if TYPE_CHECKING:
    from dagster import DagsterInstance

WORKSPACE = REPO_ROOT / "workspace.yaml"


class ServiceError(RuntimeError):
    """A service did not start or exited; the message names it and its log folder."""


class DagsterServices:
    """Code servers, webserver and (optionally) daemon on one workspace and one persistent instance."""

    def __init__(
        self,
        settings: MeshSettings,
        *,
        daemon: bool = True,
        webserver_port: int | None = None,
        dagster_home: str | Path | None = None,
        workspace: Path = WORKSPACE,
        extra_env: dict[str, str] | None = None,
        startup_timeout: float = 300.0,
        log_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.profile = settings.profile
        self.daemon = daemon
        self.host = settings.host
        self.port = settings.ports.dagster_webserver if webserver_port is None else webserver_port
        self.dagster_home = Path(dagster_home).resolve() if dagster_home else settings.dagster_home
        self.workspace = Path(workspace)
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir or settings.profile_home / "logs"
        self._extra_env = dict(extra_env or {})
        self._env: dict[str, str] = {}
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._pgid: int | None = None
        self._socket_dir: str | None = None
        self._logs: list[Any] = []

    # ---- properties ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> DagsterClient:
        """The GraphQL client of the webserver; its waits stop at once if a service died."""
        return DagsterClient(self.url, alive=self.check_alive)

    @property
    def env(self) -> dict[str, str]:
        """The environment of the services (includes the lake instance's URL: never log it)."""
        return dict(self._env)

    @property
    def location_names(self) -> list[str]:
        return [loc.name for loc in locations(self.workspace)]

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> DagsterServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def open_instance(self) -> Iterator[DagsterInstance]:
        """The services' instance, opened in this process (e.g. for a test to read the event log)."""
        with open_instance(self.settings, self.dagster_home) as instance:
            yield instance

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args[:4])} ...\n".encode())
        log.flush()
        self._logs.append(log)
        proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # the first process leads a new group; the others join it: stop() ends them all
            process_group=0 if self._pgid is None else self._pgid,
        )
        if self._pgid is None:
            self._pgid = proc.pid
        self._procs.append((name, proc))
        return proc

    def start(self) -> None:
        if self._procs:
            raise ServiceError("services already started")
        if self.port == 0:
            self.port = _free_port(self.host)
        _check_port_free(self.host, self.port)
        write_instance(self.settings, self.dagster_home)
        self._env = self.settings.process_env(
            {**instance_env(self.settings, self.dagster_home), **self._extra_env}
        )
        # Create (or migrate) the storage once, here: the webserver and the daemon starting on a
        # fresh SQLite instance at the same time would both stamp its schema.
        with self.open_instance():
            pass
        bin_dir = Path(sys.executable).parent
        # Unix sockets need short paths (about 100 bytes): a private folder under the system temp
        self._socket_dir = tempfile.mkdtemp(prefix="mesh-grpc-")
        grpc_workspace = []
        try:
            for location in locations(self.workspace):
                name = location.name
                sock = os.path.join(self._socket_dir, f"{name[:40]}.sock")
                self._spawn(
                    f"code-server-{name}",
                    [
                        str(bin_dir / "dagster"),
                        "code-server",
                        "start",
                        "--socket",
                        sock,
                        "-m",
                        location.module_name,
                        "--location-name",
                        name,
                        "--working-directory",
                        str(REPO_ROOT),
                    ],
                )
                grpc_workspace.append({"grpc_server": {"location_name": name, "socket": sock}})
            self._wait_for_code_servers(
                [e["grpc_server"]["socket"] for e in grpc_workspace], self.startup_timeout
            )
            workspace_file = Path(self._socket_dir) / "workspace.yaml"
            workspace_file.write_text(yaml.safe_dump({"load_from": grpc_workspace}, sort_keys=False))
            self._spawn(
                "webserver",
                [
                    str(bin_dir / "dagster-webserver"),
                    "-w",
                    str(workspace_file),
                    "-h",
                    self.host,
                    "-p",
                    str(self.port),
                ],
            )
            if self.daemon:
                self._spawn("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace_file)])
            self.client.wait_for_locations(self.location_names, self.startup_timeout)
            if self.daemon:
                self.client.wait_for_daemon(self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """End every process of the group: SIGINT (clean shutdown), then SIGTERM, then SIGKILL."""
        if self._pgid is not None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                if all(p.poll() is not None for _, p in self._procs) and not _group_alive(self._pgid):
                    break
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._pgid, sig)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    if all(p.poll() is not None for _, p in self._procs) and not _group_alive(self._pgid):
                        break
                    time.sleep(0.2)
        for _, proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        self._procs.clear()
        self._pgid = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _wait_for_code_servers(self, sockets: list[str], timeout: float) -> None:
        """Wait until every code server answers a ping (it then loads its code in the background)."""
        deadline = time.monotonic() + timeout
        pending = list(sockets)
        while pending:
            self.check_alive()
            for sock in list(pending):
                if not os.path.exists(sock):
                    continue
                with contextlib.suppress(Exception):
                    ping_code_server(sock)
                    pending.remove(sock)
            if pending and time.monotonic() > deadline:
                raise ServiceError(f"code servers not answering after {timeout:.0f}s: {pending}")
            if pending:
                time.sleep(0.3)

    def check_alive(self) -> None:
        """Raise ServiceError naming every service that exited (and where its log is)."""
        dead = [(name, p.returncode) for name, p in self._procs if p.poll() is not None]
        if dead:
            raise ServiceError(
                f"service(s) exited: {', '.join(f'{n} (exit {c})' for n, c in dead)}; see {self.log_dir}"
            )


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on (the webserver would fail, and its GraphQL answer
    would come from the other server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            raise ServiceError(
                f"{host}:{port} is in use: stop what listens there, or choose another port "
                "(webserver_port=, `mesh ui --port`, MESH_PORT_DAGSTER_WEBSERVER)"
            ) from None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
