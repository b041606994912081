"""Dagster's long-running services on the mesh: one code server per domain, the webserver, the daemon.

``DagsterServices`` starts, on loopback and with the profile's persistent instance (SQLite under
``.mesh/<profile>/dagster`` locally, PostgreSQL on the lake):

* one ``dagster code-server start`` per code location of ``workspace.yaml`` (a Unix socket each):
  the webserver and the daemon share them, as one deployment per domain would be shared, so a
  code location reloaded from the UI (or GraphQL ``reloadRepositoryLocation``) is reloaded for
  the daemon's sensors too;
* ``dagster-webserver`` on ``MESH_PORT_DAGSTER_WEBSERVER`` (or ``webserver_port``);
* ``dagster-daemon run`` (sensors, schedules, the freshness evaluation of SLAs), unless ``daemon=False``.

Every process is in one process group that ``stop()`` ends (SIGINT, then SIGTERM, then SIGKILL).
Logs go to ``<MESH_HOME>/<profile>/logs/``. Tests pass ``mesh_home`` (and ``dagster_home``) to use
an isolated instance and catalog::

    with DagsterServices(profile="local", daemon=True, mesh_home=tmp) as svc:
        svc.graphql("{ version }")

Secrets: the PostgreSQL URL of the lake instance reaches the processes only through the
environment (``MESH_DAGSTER_PG_URL``, referenced by ``dagster.yaml``); it is never logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mesh_assets.orchestration.graphql import LAUNCH_RUN, asset_run_params, launch_failure
from mesh_assets.orchestration.instance import dagster_pg_url, instance_config
from mesh_assets.settings import REPO_ROOT, MeshSettings, Profile

if TYPE_CHECKING:
    from dagster import DagsterInstance

WORKSPACE = REPO_ROOT / "workspace.yaml"

_LOCATIONS = """
query MeshLocations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

_DAEMONS = """
query MeshDaemons { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""


class ServiceError(RuntimeError):
    """A service did not start, a code location failed to load, or a GraphQL call failed."""


def workspace_locations(workspace: Path) -> list[dict[str, str]]:
    """The ``python_module`` entries of a workspace file: location name and module."""
    entries = []
    for item in yaml.safe_load(workspace.read_text())["load_from"]:
        spec = item.get("python_module")
        if spec is None:
            raise ServiceError(f"{workspace}: only python_module entries are supported, got {item}")
        if isinstance(spec, str):
            spec = {"module_name": spec, "location_name": spec}
        entries.append({"module_name": spec["module_name"], "location_name": spec["location_name"]})
    return entries


class DagsterServices:
    """Code servers, webserver and (optionally) daemon on one workspace and one persistent instance."""

    def __init__(
        self,
        profile: str = "local",
        daemon: bool = True,
        webserver_port: int | None = None,
        dagster_home: str | Path | None = None,
        *,
        mesh_home: str | Path | None = None,
        workspace: Path = WORKSPACE,
        env: dict[str, str] | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        base_env = {**os.environ, **(env or {})}
        if mesh_home is not None:
            base_env["MESH_HOME"] = str(Path(mesh_home).resolve())
        base_env["MESH_PROFILE"] = str(profile)
        # settings as the child processes will see them (MESH_* of base_env)
        saved = {k: v for k, v in os.environ.items() if k.startswith("MESH_")}
        try:
            for k in saved:
                del os.environ[k]
            os.environ.update({k: v for k, v in base_env.items() if k.startswith("MESH_")})
            self.settings = MeshSettings.from_env(profile)
        finally:
            for k in [k for k in os.environ if k.startswith("MESH_")]:
                del os.environ[k]
            os.environ.update(saved)
        self.profile = self.settings.profile
        self.daemon = daemon
        self.host = self.settings.host
        self.port = webserver_port or self.settings.ports.dagster_webserver
        self.dagster_home = Path(dagster_home).resolve() if dagster_home else self.settings.dagster_home
        self.workspace = workspace
        self.startup_timeout = startup_timeout
        self.log_dir = self.settings.profile_home / "logs"
        self._env = base_env
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._pgid: int | None = None
        self._socket_dir: str | None = None
        self._logs: list[Any] = []

    # ---- properties ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of the services (includes the lake instance's URL: never log it)."""
        return dict(self._env)

    @property
    def location_names(self) -> list[str]:
        return [e["location_name"] for e in workspace_locations(self.workspace)]

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> DagsterServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_instance(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        path = self.dagster_home / "dagster.yaml"
        text = yaml.safe_dump(instance_config(self.settings), sort_keys=False)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        self._env["DAGSTER_HOME"] = str(self.dagster_home)
        if self.profile is Profile.LAKE:
            self._env["MESH_DAGSTER_PG_URL"] = dagster_pg_url(self.settings)
        # Create (or migrate) the storage once, here: the webserver and the daemon starting on a
        # fresh SQLite instance at the same time would both stamp its schema.
        with self.open_instance():
            pass

    @contextlib.contextmanager
    def open_instance(self) -> Iterator[DagsterInstance]:
        """The services' instance, opened in this process (e.g. for a test to read the event log)."""
        import dagster as dg

        saved = os.environ.get("MESH_DAGSTER_PG_URL")
        if "MESH_DAGSTER_PG_URL" in self._env:
            os.environ["MESH_DAGSTER_PG_URL"] = self._env["MESH_DAGSTER_PG_URL"]
        try:
            with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
                yield instance
        finally:
            if saved is None:
                os.environ.pop("MESH_DAGSTER_PG_URL", None)
            else:
                os.environ["MESH_DAGSTER_PG_URL"] = saved

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
        _check_port_free(self.host, self.port)
        self._write_instance()
        bin_dir = Path(sys.executable).parent
        # Unix sockets need short paths (about 100 bytes): a private folder under the system temp
        self._socket_dir = tempfile.mkdtemp(prefix="mesh-grpc-")
        grpc_workspace = []
        try:
            for entry in workspace_locations(self.workspace):
                name = entry["location_name"]
                socket = os.path.join(self._socket_dir, f"{name[:40]}.sock")
                self._spawn(
                    f"code-server-{name}",
                    [
                        str(bin_dir / "dagster"),
                        "code-server",
                        "start",
                        "--socket",
                        socket,
                        "-m",
                        entry["module_name"],
                        "--location-name",
                        name,
                        "--working-directory",
                        str(REPO_ROOT),
                    ],
                )
                grpc_workspace.append({"grpc_server": {"location_name": name, "socket": socket}})
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
            self.wait_for_locations(self.startup_timeout)
            if self.daemon:
                self.wait_for_daemon(self.startup_timeout)
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
        from dagster._grpc.client import DagsterGrpcClient

        deadline = time.monotonic() + timeout
        pending = list(sockets)
        while pending:
            self._check_alive()
            for socket in list(pending):
                if not os.path.exists(socket):
                    continue
                with contextlib.suppress(Exception):
                    DagsterGrpcClient(socket=socket).ping("mesh")
                    pending.remove(socket)
            if pending and time.monotonic() > deadline:
                raise ServiceError(f"code servers not answering after {timeout:.0f}s: {pending}")
            if pending:
                time.sleep(0.3)

    def _check_alive(self) -> None:
        dead = [(name, p.returncode) for name, p in self._procs if p.poll() is not None]
        if dead:
            raise ServiceError(
                f"service(s) exited: {', '.join(f'{n} (exit {c})' for n, c in dead)}; see {self.log_dir}"
            )

    # ---- GraphQL ---------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60.0) -> dict:
        """POST to the webserver's /graphql; the ``data``, or ServiceError with the GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"GraphQL HTTP {exc.code}: {exc.read()[:2000]!r}") from None
        if payload.get("errors"):
            raise ServiceError("; ".join(e.get("message", str(e)) for e in payload["errors"]))
        return payload["data"]

    def wait_for_locations(self, timeout: float = 300.0) -> dict[str, str]:
        """Wait until the webserver answers and every code location is loaded; raise on a load error."""
        deadline = time.monotonic() + timeout
        last: Any = "webserver not answering"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                data = self.graphql(_LOCATIONS, timeout=10)["workspaceOrError"]
            except (urllib.error.URLError, ConnectionError, TimeoutError, ServiceError) as exc:
                last = exc
                time.sleep(0.5)
                continue
            if data["__typename"] != "Workspace":
                last = data.get("message")
                time.sleep(0.5)
                continue
            entries = {e["name"]: e for e in data["locationEntries"]}
            errors = {
                name: e["locationOrLoadError"]["message"]
                for name, e in entries.items()
                if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"
            }
            if errors:
                text = "\n".join(f"- {n}: {m.strip()[:2000]}" for n, m in errors.items())
                raise ServiceError(f"code location(s) failed to load:\n{text}")
            loaded = {
                n: e["loadStatus"]
                for n, e in entries.items()
                if e["loadStatus"] == "LOADED"
                and e["locationOrLoadError"]
                and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            }
            if set(self.location_names) <= set(loaded):
                return loaded
            last = {n: e["loadStatus"] for n, e in entries.items()}
            time.sleep(0.5)
        raise ServiceError(f"code locations not loaded after {timeout:.0f}s: {last}; see {self.log_dir}")

    def wait_for_daemon(self, timeout: float = 120.0, daemons: tuple[str, ...] = ("SENSOR",)) -> None:
        """Wait until the daemon's threads (default: the sensor daemon) report healthy heartbeats."""
        deadline = time.monotonic() + timeout
        status: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            statuses = self.graphql(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
            status = {s["daemonType"]: s["healthy"] for s in statuses}
            if all(status.get(d) for d in daemons):
                return
            time.sleep(0.5)
        raise ServiceError(f"daemon not healthy after {timeout:.0f}s: {status}; see {self.log_dir}")

    def reload_location(self, name: str, timeout: float = 300.0) -> None:
        """Reload one code location (as the UI's "Reload" button) and wait until it is loaded again."""
        result = self.graphql(
            """
            mutation MeshReload($name: String!) {
              reloadRepositoryLocation(repositoryLocationName: $name) {
                __typename
                ... on PythonError { message }
                ... on ReloadNotSupported { message }
                ... on RepositoryLocationNotFound { message }
                ... on UnauthorizedError { message }
              }
            }
            """,
            {"name": name},
        )["reloadRepositoryLocation"]
        if result["__typename"] != "WorkspaceLocationEntry":
            raise ServiceError(f"reloading {name} failed ({result['__typename']}): {result.get('message')}")
        self.wait_for_locations(timeout)

    # ---- runs and sensors (the GraphQL calls the UI makes) ------------------------------------
    def launch_assets(
        self,
        location: str,
        keys: list[list[str]],
        *,
        tags: dict[str, str] | None = None,
        partition_range: tuple[str, str] | None = None,
    ) -> str:
        """Materialize ``keys`` of ``location`` (its implicit asset job, as "Materialize"); the run id."""
        params = asset_run_params(
            location, "__repository__", keys, tags=tags, partition_range=partition_range
        )
        result = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        if failure := launch_failure(result):
            raise ServiceError(f"launching {keys} in {location} failed ({failure})")
        return result["run"]["runId"]

    def runs(self, *, tags: dict[str, str] | None = None, run_ids: list[str] | None = None) -> list[dict]:
        """Runs (newest first) with ``runId status creationTime startTime endTime tags assetSelection``."""
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if run_ids:
            run_filter["runIds"] = run_ids
        data = self.graphql(_RUNS, {"filter": run_filter})["runsOrError"]
        if data["__typename"] != "Runs":
            raise ServiceError(f"runsOrError: {data.get('message')}")
        for run in data["results"]:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            run["assetSelection"] = [a["path"] for a in run["assetSelection"] or []]
        return data["results"]

    def wait_for_run(self, run_id: str, timeout: float = 300.0) -> dict:
        """Wait until the run has ended; the run (see :meth:`runs`)."""
        deadline = time.monotonic() + timeout
        while True:
            [run] = self.runs(run_ids=[run_id])
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run
            if time.monotonic() > deadline:
                raise ServiceError(f"run {run_id} still {run['status']} after {timeout:.0f}s")
            self._check_alive()
            time.sleep(0.5)

    def sensor_ticks(self, location: str, sensor: str, limit: int = 25) -> list[dict]:
        """The sensor's latest ticks, newest first: ``status timestamp skipReason runIds error``."""
        data = self.graphql(
            _TICKS,
            {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "sensorName": sensor,
                },
                "limit": limit,
            },
        )["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise ServiceError(f"sensor {location}:{sensor}: {data.get('message')}")
        return data["sensorState"]["ticks"]


_RUNS = """
query MeshRuns($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId status creationTime startTime endTime
        tags { key value }
        assetSelection { path }
      }
    }
    ... on PythonError { message }
  }
}
"""

_TICKS = """
query MeshTicks($selector: SensorSelector!, $limit: Int) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      minIntervalSeconds
      sensorState { status ticks(limit: $limit) { status timestamp skipReason runIds cursor error { message } } }
    }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on (the webserver would fail, and its GraphQL answer
    would come from the other server)."""
    import socket

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


def main_ui(profile: str | None, port: int | None) -> int:
    """``mesh ui``: the services in the foreground until Ctrl-C."""
    import click

    def _terminate(signum, frame):  # a SIGTERM stops the services like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with DagsterServices(
        profile=profile or os.environ.get("MESH_PROFILE") or "local", webserver_port=port
    ) as svc:
        click.echo(
            f"Dagster UI on {svc.url} (profile {svc.profile.value}, instance {svc.dagster_home}, "
            f"logs {svc.log_dir}); Ctrl-C stops it"
        )
        try:
            while True:
                time.sleep(1)
                svc._check_alive()
        except KeyboardInterrupt:
            click.echo("stopping the Dagster services")
    return 0
