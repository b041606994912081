"""Local deploys: replace one domain's code server under running Dagster services, the others untouched.

``mesh ui`` runs one ``dagster code-server start`` per location and records them in the instance's
``mesh-services.json`` (:mod:`mesh_assets.orchestration.services`). ``mesh deploy DOMAIN``:

1. **version** the location's code (:meth:`Location.code_version`); the same version already serving
   is left alone (``force`` redeploys it anyway);
2. **build** the domain's artifact: its wheel (``uv build`` of ``domains/<name>/pyproject.toml``, the
   same package the Kubernetes image installs), kept under ``<DAGSTER_HOME>/deploys/<name>/<version>/``
   and unpacked beside it. The new code server imports the domain from there (its working
   directory), so editing the source after a deploy changes nothing that serves until the next
   deploy. The platform's own locations (``mesh_assets.*``) are served by the installed platform;
3. **check** the artifact the way its new server will load it (``dagster definitions validate``, in a
   process with the services' environment): a domain that fails to import or to build its
   definitions is never swapped in, and the running version keeps serving;
4. **drain**: wait until no run of that location is starting or in flight (a run's process is a
   child of its location's code server, so replacing the server would end it); runs of other
   locations go on;
5. **replace** the code server: stop the old one (SIGTERM, then SIGKILL), start the new one on the
   same socket, in its own session, so that it outlives the ``mesh deploy`` process;
6. **reload** that location in the webserver (GraphQL ``reloadRepositoryLocation``); the daemon
   reloads its workspace by itself within a minute (Dagster's ``RELOAD_WORKSPACE_INTERVAL``).

Every other location's code server keeps its process. Why a per-location server, and how this
relates to the Kubernetes release of a domain: docs/decisions/0008-local-deploys.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.orchestration.client import DagsterClient
from mesh_assets.orchestration.dagster_internals import ping_code_server, shutdown_code_server
from mesh_assets.orchestration.instance import location_env
from mesh_assets.orchestration.services import (
    STATE_FILE,
    ServiceError,
    code_server_command,
    location_image,
    pid_alive,
    python_path,
    read_state,
    server_record,
    tree_rss_mb,
    wait_for_code_servers,
    write_state,
)
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import Location, WorkspaceError, find_uv

# the statuses of a run whose process a code server holds (QUEUED runs start on whichever server runs)
IN_FLIGHT = ("STARTING", "STARTED", "CANCELING")
DEPLOYS_DIR = "deploys"  # under DAGSTER_HOME: <name>/<version>/{<wheel>, site/}
KEEP_VERSIONS = 3  # built versions kept per location (besides the one serving): rollbacks need no build


class LocalDeployError(RuntimeError):
    """A deploy could not proceed; the message says why and what still serves."""


@dataclass
class Deployed:
    """What ``deploy_location`` did: versions, the new server, the time of each step, asset changes."""

    name: str
    version: str
    previous: str
    pid: int
    image: str = ""
    artifact: Path | None = None  # the wheel the new server runs; None for a platform location
    unchanged: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@dataclass(frozen=True)
class Artifact:
    """What a deployed code server imports: the domain's wheel, unpacked into ``site``."""

    wheel: Path | None  # None: a platform location, served by the installed platform library
    site: Path  # the code server's working directory (first on its import path)


@dataclass(frozen=True)
class LocationStatus:
    """One location in ``mesh deploy --status``."""

    name: str
    source_version: str
    version: str | None = None  # what its code server was started with
    pid: int | None = None
    server: str = "not running"  # serving | not answering | exited | deploying | not running
    ui: str = ""  # LOADED | LOADING | failed: <first line of the error>
    image: str | None = None  # what the UI shows
    deployed: str = ""
    rss_mb: float | None = None  # the server's resident memory, the code-loading child included


def services_state(settings: MeshSettings, dagster_home: Path | None = None) -> dict[str, Any]:
    home = dagster_home or settings.dagster_home
    state = read_state(home / STATE_FILE)
    if state is None:
        raise LocalDeployError(
            f"no Dagster services of the {settings.profile.value} profile are running (no live "
            f"{home / STATE_FILE}): start them with `mesh ui --profile {settings.profile.value}`; "
            "`mesh deploy apply DOMAIN` deploys to Kubernetes instead"
        )
    return state


def deploy_location(
    settings: MeshSettings,
    name: str,
    *,
    dagster_home: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    force: bool = False,
    drain_timeout: float = 900.0,
    startup_timeout: float = 300.0,
    progress: Callable[[str], None] = lambda _: None,
) -> Deployed:
    """Deploy location ``name`` to the running services of ``settings``' profile (see the module doc)."""
    home = dagster_home or settings.dagster_home
    state_file = home / STATE_FILE
    state = services_state(settings, home)
    record = state["locations"].get(name)
    if record is None:
        raise LocalDeployError(
            f"{name!r} is not a code location of the running services: choose one of {sorted(state['locations'])}"
        )
    location = Location(name, record["module"])
    env = location_env(settings, location.domain, home, extra_env)
    version = location.code_version(REPO_ROOT, python_path(env))
    report = Deployed(name, version, record["version"], int(record.get("pid") or 0))
    report.image = location_image(name, version)
    if version == record["version"] and not force and pid_alive(report.pid):
        report.unchanged = True
        return report

    step = time.monotonic()
    artifact = build_artifact(location, version, home, python_path(env), keep=record.get("version"))
    report.artifact = artifact.wheel
    report.seconds["build"] = time.monotonic() - step
    progress(f"built {artifact.wheel.name if artifact.wheel else name} in {report.seconds['build']:.1f}s")

    step = time.monotonic()
    _check(location, env, record["version"], artifact.site)
    report.seconds["check"] = time.monotonic() - step
    progress(f"checked {name} {version} in {report.seconds['check']:.1f}s")

    client = DagsterClient(state["url"])
    before = _asset_keys(client, name)
    step = time.monotonic()
    _drain(client, name, drain_timeout, progress)
    report.seconds["drain"] = time.monotonic() - step

    step = time.monotonic()
    # the services ignore this location's server from here on (its exit is the deploy's doing)
    state["locations"][name] = {**record, "pid": 0, "deploying": True}
    write_state(state_file, state)
    _stop_server(int(record.get("pid") or 0), record["socket"])
    report.seconds["stop"] = time.monotonic() - step
    step = time.monotonic()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record["socket"])  # a socket file left by a killed server would refuse the bind
    log_dir = Path(state.get("log_dir") or settings.profile_home / "logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"code-server-{name}.log", "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} mesh deploy {name} {version}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            code_server_command(location, record["socket"], version, working_directory=artifact.site),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this process; the services stop it by its group
        )
    report.pid = proc.pid
    state["locations"][name] = {
        **server_record(location, record["socket"], version, proc.pid),
        "artifact": str(artifact.wheel or ""),
    }
    write_state(state_file, state)
    _wait_for_server(proc, record["socket"], startup_timeout, log_dir)
    report.seconds["start"] = time.monotonic() - step
    progress(f"started {name}'s code server (pid {proc.pid}) in {report.seconds['start']:.1f}s")

    step = time.monotonic()
    client.reload_location(name, startup_timeout)
    report.seconds["reload"] = time.monotonic() - step
    after = _asset_keys(client, name)
    report.added = sorted(after - before)
    report.removed = sorted(before - after)
    return report


def deploy_status(
    settings: MeshSettings,
    locations: list[Location],
    *,
    dagster_home: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> list[LocationStatus]:
    """Each location: the version of its source, what its server runs, whether it answers, the UI's view."""
    home = dagster_home or settings.dagster_home
    state = read_state(home / STATE_FILE)
    search = python_path({**settings.environ, **(extra_env or {})})
    ui: dict[str, dict[str, Any]] = {}
    if state:
        with contextlib.suppress(Exception):
            ui = DagsterClient(state["url"]).locations()
    rows = []
    for location in locations:
        source = location.code_version(REPO_ROOT, search)
        record = (state or {}).get("locations", {}).get(location.name)
        if record is None:
            rows.append(LocationStatus(location.name, source))
            continue
        pid = int(record.get("pid") or 0)
        if record.get("deploying"):
            server = "deploying"
        elif not pid_alive(pid):
            server = "exited"
        else:
            try:
                ping_code_server(record["socket"])
                server = "serving"
            except Exception:
                server = "not answering"
        entry = ui.get(location.name, {})
        shown = (
            "failed: " + entry["error"].strip().splitlines()[0]
            if entry.get("error")
            else entry.get("status", "")
        )
        rows.append(
            LocationStatus(
                location.name,
                source,
                record["version"],
                pid or None,
                server,
                shown,
                entry.get("image"),
                record.get("deployed", ""),
                tree_rss_mb(pid) if server == "serving" else None,
            )
        )
    return rows


def build_artifact(
    location: Location, version: str, home: Path, search: list[Path], keep: str | None = None
) -> Artifact:
    """The location's wheel at ``version``, built once (``uv build`` of its package) and unpacked.

    A version already built is reused: the same content gives the same version. Older builds beyond
    :data:`KEEP_VERSIONS` are removed, never ``keep`` (the version serving now).
    """
    package = location.package_dir(REPO_ROOT, search)
    if not (package / "pyproject.toml").is_file():
        if location.module_name.startswith("mesh_assets."):
            return Artifact(None, REPO_ROOT)
        raise LocalDeployError(
            f"{location.name} is not a package: {package} has no pyproject.toml (a domain ships as its "
            "own package; `mesh new-domain` writes one). Nothing was replaced"
        )
    builds = home / DEPLOYS_DIR / location.name
    target = builds / version
    wheels = sorted(target.glob("*.whl"))
    if wheels and (target / "site").is_dir():
        os.utime(target)  # the newest use: pruning keeps it
        return Artifact(wheels[0], target / "site")
    builds.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=builds))
    try:
        try:
            uv = find_uv()
        except WorkspaceError as exc:
            raise LocalDeployError(f"{exc}; nothing was replaced") from exc
        done = subprocess.run(
            # the build backend runs on this environment's Python: no interpreter discovery
            [
                *uv,
                "build",
                str(package),
                "--wheel",
                "--python",
                sys.executable,
                "--no-python-downloads",
                "-o",
                str(staging),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(staging.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise LocalDeployError(
                f"building {location.name}'s wheel from {package} failed; nothing was replaced:\n"
                + (done.stdout + done.stderr).strip()[-3000:]
            )
        _unpack(wheels[0], staging / "site", location, package)
        shutil.rmtree(target, ignore_errors=True)  # a half-built folder of a killed deploy
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(builds, keep={version, keep or ""})
    return Artifact(target / wheels[0].name, target / "site")


def _unpack(wheel: Path, site: Path, location: Location, package: Path) -> None:
    """The wheel's modules into ``site``; the parent packages' ``__init__`` it leaves out (the wheel
    of ``domains/<name>`` holds that folder only) are copied from the source, so that ``site`` comes
    first when the server imports the location's module."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(
            site, [m for m in archive.namelist() if not m.split("/")[0].endswith(".dist-info")]
        )
    parts = location.module_name.split(".")[:-1]
    if not site.joinpath(*parts).is_dir():
        raise LocalDeployError(
            f"the wheel {wheel.name} does not hold {'/'.join(parts)}/ (check [tool.hatch.build] in "
            f"{package / 'pyproject.toml'}); nothing was replaced"
        )
    base = package.parents[len(parts) - 1]  # the folder holding the top-level package
    for depth in range(1, len(parts)):
        init = site.joinpath(*parts[:depth], "__init__.py")
        if not init.exists():
            source = base.joinpath(*parts[:depth], "__init__.py")
            init.write_bytes(source.read_bytes() if source.is_file() else b"")


def _prune(builds: Path, keep: set[str]) -> None:
    versions = sorted(
        (d for d in builds.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in [d for d in versions if d.name not in keep][KEEP_VERSIONS:]:
        shutil.rmtree(old, ignore_errors=True)


def _check(location: Location, env: dict[str, str], running: str, working_directory: Path) -> None:
    """Load the location in a fresh process, as its new server would; raise with the error if it fails."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            location.module_name,
            "--working-directory",
            str(working_directory),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [
            line for line in (done.stdout + done.stderr).splitlines() if " - dagster - INFO - " not in line
        ]
        raise LocalDeployError(
            f"{location.name} does not load; nothing was replaced and version {running} keeps serving:\n"
            + "\n".join(lines[-40:])
        )


def _drain(client: DagsterClient, name: str, timeout: float, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        running = [r for r in client.runs(statuses=IN_FLIGHT) if r["location"] == name]
        if not running:
            return
        if time.monotonic() > deadline:
            ids = ", ".join(r["runId"] for r in running)
            raise LocalDeployError(
                f"{len(running)} run(s) of {name} still in flight after {timeout:.0f}s ({ids}): nothing was "
                "replaced; wait for them or cancel them, then deploy again"
            )
        if not told:
            progress(f"waiting for {len(running)} run(s) of {name} to finish")
            told = True
        time.sleep(1.0)


def _stop_server(pid: int, socket_path: str, timeout: float = 30.0) -> None:
    """End a code server and its API server child: asked over gRPC, then SIGTERM, then SIGKILL."""
    if not pid_alive(pid):
        return
    import psutil  # a Dagster dependency: the children of a process

    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return

    def ended(wait: float) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(pid_alive(p.pid) for p in family):
                return True
            time.sleep(0.2)
        return False

    with contextlib.suppress(Exception):
        shutdown_code_server(socket_path)
        if ended(timeout):
            return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for proc in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        if ended(wait):
            return


def _wait_for_server(proc: subprocess.Popen, socket_path: str, timeout: float, log_dir: Path) -> None:
    def alive() -> None:
        if proc.poll() is not None:
            raise LocalDeployError(
                f"the new code server exited ({proc.returncode}); see {log_dir}/code-server-*.log"
            )

    try:
        wait_for_code_servers([socket_path], timeout, alive)
    except ServiceError as exc:
        raise LocalDeployError(f"the new code server does not answer: {exc}; see {log_dir}") from None


def _asset_keys(client: DagsterClient, name: str) -> set[str]:
    return {
        "/".join(node["assetKey"]["path"])
        for node in client.asset_nodes()
        if node["repository"]["location"]["name"] == name
    }
