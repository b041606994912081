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

Each code server serves one location at its **code version** (:meth:`Location.code_version`), shown
in the UI as the location's image ``mesh/<location>:<version>``. The running services are recorded in
``<DAGSTER_HOME>/mesh-services.json`` (webserver URL, each code server's pid, socket and version: no
secret), so that ``mesh deploy DOMAIN`` (:mod:`mesh_assets.deploy.local`) can replace one code server
while the others keep running; the services stop a replaced server with the rest.

Secrets: the PostgreSQL URL of the lake instance reaches the processes only through their
environment (``MESH_DAGSTER_PG_URL``, referenced by ``dagster.yaml``); it is never logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mesh_assets.orchestration.client import DagsterClient
from mesh_assets.orchestration.dagster_internals import ping_code_server
from mesh_assets.orchestration.instance import instance_env, location_env, open_instance, write_instance
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import Location, locations

if TYPE_CHECKING:
    from dagster import DagsterInstance

WORKSPACE = REPO_ROOT / "workspace.yaml"
STATE_FILE = "mesh-services.json"


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
        allow_broken: bool = False,
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
        # a location that fails to load shows as failed in the UI while the others serve (`mesh ui`);
        # tests and the demo want every location loaded and fail at start otherwise
        self.allow_broken = allow_broken
        self.broken: dict[str, str] = {}
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

    @property
    def state_file(self) -> Path:
        return self.dagster_home / STATE_FILE

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

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args[:4])} ...\n".encode())
        log.flush()
        self._logs.append(log)
        proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=self._env if env is None else env,
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
        search = python_path(self._env)
        servers: dict[str, dict[str, Any]] = {}
        try:
            for location in locations(self.workspace):
                name = location.name
                sock = os.path.join(self._socket_dir, f"{name[:40]}.sock")
                version = location.code_version(REPO_ROOT, search)
                # each domain's server with its own principal's credentials (lake), not the platform's
                env = location_env(self.settings, location.domain, self.dagster_home, self._extra_env)
                proc = self._spawn(f"code-server-{name}", code_server_command(location, sock, version), env)
                servers[name] = server_record(location, sock, version, proc.pid)
                grpc_workspace.append({"grpc_server": {"location_name": name, "socket": sock}})
            wait_for_code_servers(
                [e["grpc_server"]["socket"] for e in grpc_workspace], self.startup_timeout, self.check_alive
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
            write_state(
                self.state_file,
                {
                    "url": self.url,
                    "owner": os.getpid(),
                    "profile": self.profile.value,
                    "log_dir": str(self.log_dir),
                    "started": _now(),
                    "locations": servers,
                },
            )
            entries = self.client.wait_for_locations(
                self.location_names, self.startup_timeout, allow_errors=self.allow_broken
            )
            self.broken = {n: e["error"] for n, e in entries.items() if e["error"]}
            if self.daemon:
                self.client.wait_for_daemon(self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """End every process of the group, and the code servers `mesh deploy` started in their own:
        SIGINT (clean shutdown), then SIGTERM, then SIGKILL."""
        groups = [] if self._pgid is None else [self._pgid]
        groups += [pid for pid in self._replaced().values() if pid]

        def ended() -> bool:
            return all(p.poll() is not None for _, p in self._procs) and not any(map(_group_alive, groups))

        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if ended():
                break
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not ended():
                time.sleep(0.2)
        for _, proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        state = read_state(self.state_file)
        if state and state.get("owner") == os.getpid():
            self.state_file.unlink(missing_ok=True)
        self._procs.clear()
        self._pgid = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _replaced(self) -> dict[str, int]:
        """The code servers a deploy replaced: location -> the pid now serving it (0 while deploying)."""
        state = read_state(self.state_file)
        if not state or state.get("owner") != os.getpid():
            return {}
        ours = {name.removeprefix("code-server-"): p.pid for name, p in self._procs}
        return {
            name: int(record.get("pid") or 0)
            for name, record in state["locations"].items()
            if ours.get(name) != record.get("pid")
        }

    def check_alive(self) -> None:
        """Raise ServiceError naming every service that exited (and where its log is); a code server
        a deploy replaced is checked in its new process."""
        replaced = self._replaced()
        dead = [
            (name, p.returncode)
            for name, p in self._procs
            if p.poll() is not None and name.removeprefix("code-server-") not in replaced
        ]
        dead += [
            (f"code-server-{n} (deployed)", "?") for n, pid in replaced.items() if pid and not pid_alive(pid)
        ]
        if dead:
            raise ServiceError(
                f"service(s) exited: {', '.join(f'{n} (exit {c})' for n, c in dead)}; see {self.log_dir}"
            )


def wait_for_code_servers(sockets: list[str], timeout: float, alive: Callable[[], None]) -> None:
    """Wait until every code server answers a ping (it then loads its code in the background);
    ``alive`` is called between attempts and raises when a server has exited."""
    deadline = time.monotonic() + timeout
    pending = list(sockets)
    while pending:
        alive()
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


def code_server_command(
    location: Location, socket_path: str, version: str, working_directory: Path = REPO_ROOT
) -> list[str]:
    """``dagster code-server start`` of one location on a Unix socket, its version as its image.

    ``working_directory`` comes first on the server's import path: the repository for ``mesh ui``,
    a deployed artifact for ``mesh deploy`` (:mod:`mesh_assets.deploy.local`)."""
    return [
        str(Path(sys.executable).parent / "dagster"),
        "code-server",
        "start",
        "--socket",
        socket_path,
        "-m",
        location.module_name,
        "--location-name",
        location.name,
        "--working-directory",
        str(working_directory),
        # what the UI shows for the location (Deployment > Code locations): the tag its image has
        # on Kubernetes (deploy/k8s), so the same code shows the same version everywhere
        "--container-image",
        location_image(location.name, version),
    ]


def location_image(name: str, version: str, registry: str = "mesh") -> str:
    return f"{registry}/{name}:{version}"


def python_path(env: dict[str, str]) -> list[Path]:
    """The extra import folders of a process environment (where a location's package may live)."""
    return [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


def server_record(location: Location, socket_path: str, version: str, pid: int) -> dict[str, Any]:
    return {
        "module": location.module_name,
        "socket": socket_path,
        "version": version,
        "pid": pid,
        "deployed": _now(),
    }


def read_state(path: Path) -> dict[str, Any] | None:
    """The running services of an instance (``mesh-services.json``), or None when none run:
    no file, or its owner (the process that started them) has exited."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(int(state.get("owner", 0))) else None


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file at once (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, parent pid, ...); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    fields = _proc_stat(pid) if pid > 0 else None
    return bool(fields) and fields[0] not in ("Z", "X")


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` and its descendants in MB (a code server and the process that
    loads the domain's code); None if the process is gone or /proc cannot tell (not Linux)."""
    if not pid_alive(pid):
        return None
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))) and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            with open(f"/proc/{current}/status") as status:
                total_kb += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            continue
    return total_kb / 1024 if total_kb else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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
    """Whether a process of group ``pgid`` still runs (zombies waiting to be reaped do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
