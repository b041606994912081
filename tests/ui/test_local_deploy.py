"""`mesh deploy DOMAIN` on running services: one domain replaced, the others and their runs untouched.

Real processes throughout: one ``dagster code-server start`` per location, the webserver, a run in
flight, ``mesh deploy`` itself and headless Chromium. The domains are small packages written for
the test into a temporary folder (the test edits one of them the way a team edits its domain), so
the repository's own domains are never changed:

* ``slow``: one asset whose run waits until the test releases it (a run in flight, event-driven);
* ``steady``: a bystander;
* ``changing``: the domain that is redeployed, with a new asset, then with an import error;
* ``broken``: fails to import from the start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ports import free_ports

from mesh_assets.deploy.local import LocalDeployError, deploy_location
from mesh_assets.orchestration.services import DagsterServices, pid_alive, read_state
from mesh_assets.settings import MeshSettings

pytestmark = pytest.mark.slow

PACKAGE = "mesh_deploy_probe"
RUN_TIMEOUT = 600.0  # seconds: generous ceilings, the machine is shared with the rest of the suite
UI_TIMEOUT = 120_000  # milliseconds

SLOW = """
import time
from pathlib import Path

import dagster as dg

RELEASE = Path({release!r})


@dg.asset
def long_run() -> dg.MaterializeResult:
    \"\"\"Runs until the test creates its release file (ceiling: 10 minutes).\"\"\"
    deadline = time.monotonic() + 600
    while not RELEASE.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the test never released this run")
        time.sleep(0.2)
    return dg.MaterializeResult(metadata={{"released": True}})


defs = dg.Definitions(assets=[long_run])
"""

STEADY = """
import dagster as dg


@dg.asset
def constant() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"value": 42})


defs = dg.Definitions(assets=[constant])
"""

CHANGING_V1 = """
import dagster as dg


@dg.asset
def first() -> dg.MaterializeResult:
    return dg.MaterializeResult()


defs = dg.Definitions(assets=[first])
"""

CHANGING_V2 = """
import dagster as dg


@dg.asset
def first() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(deps=[first], description="Added by the second version of the domain.")
def second() -> dg.MaterializeResult:
    return dg.MaterializeResult()


defs = dg.Definitions(assets=[first, second])
"""

BROKEN = """
import not_a_module_anywhere  # noqa: F401

import dagster as dg

defs = dg.Definitions()
"""


PYPROJECT = """
[project]
name = "probe-{name}"
version = "0.1.0"
requires-python = ">=3.11"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
only-include = ["."]
exclude = ["pyproject.toml", "__pycache__"]
sources = {{"." = "{package}/{name}"}}
"""


def write_domain(root: Path, name: str, source: str) -> None:
    """A domain package as `mesh new-domain` lays one out: its own pyproject.toml (so a deploy
    builds its wheel) beside its definitions."""
    package = root / PACKAGE / name
    package.mkdir(parents=True, exist_ok=True)
    (root / PACKAGE / "__init__.py").touch()
    (package / "__init__.py").touch()
    (package / "pyproject.toml").write_text(PYPROJECT.format(name=name, package=PACKAGE))
    (package / "definitions.py").write_text(source)


@pytest.fixture(scope="module")
def probe(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("deploy-probe")
    release = root / "release-the-run"
    sources = {
        "slow": SLOW.format(release=str(release)),
        "steady": STEADY,
        "changing": CHANGING_V1,
        "broken": BROKEN,
    }
    for name, source in sources.items():
        write_domain(root, name, source)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"python_module": {"module_name": f"{PACKAGE}.{n}.definitions", "location_name": n}}
                    for n in sources
                ]
            }
        )
    )
    settings = MeshSettings.from_env("local").replace(home=root / "mesh")
    extra_env = {"PYTHONPATH": str(root)}
    (port,) = free_ports(1)
    svc = DagsterServices(
        settings,
        daemon=False,
        webserver_port=port,
        workspace=workspace,
        extra_env=extra_env,
        allow_broken=True,
    )
    with svc:
        yield {
            "svc": svc,
            "root": root,
            "release": release,
            "settings": settings,
            "extra_env": extra_env,
            "workspace": workspace,
        }
        release.touch()  # a failed test must not leave the run waiting for its ceiling
        serving = pids(svc)
    # stopping the services ends the code servers a deploy started too (each in its own session)
    assert not [name for name, pid in serving.items() if pid_alive(pid)]
    assert read_state(svc.state_file) is None, "the services' state file outlived them"


def pids(svc: DagsterServices) -> dict[str, int]:
    state = read_state(svc.state_file)
    assert state is not None
    return {name: record["pid"] for name, record in state["locations"].items()}


def wait_for_status(svc: DagsterServices, run_id: str, status: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        (run,) = svc.client.runs(run_ids=[run_id])
        if run["status"] == status:
            return run
        assert run["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED"), run
        assert time.monotonic() < deadline, f"run {run_id} not {status} after {RUN_TIMEOUT:.0f}s: {run}"
        time.sleep(0.5)


def mesh(probe: dict, *args: str) -> subprocess.CompletedProcess:
    """The `mesh` command, as a user runs it, against the probe's services."""
    env = {
        **os.environ,
        "MESH_HOME": str(probe["root"] / "mesh"),
        "MESH_PROFILE": "local",
        "PYTHONPATH": str(probe["root"]),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "mesh"), *args],
        cwd=probe["root"],  # any folder: the command finds the repository and the instance itself
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_broken_domain_shows_as_failed_while_the_others_load(probe: dict) -> None:
    svc = probe["svc"]
    assert set(svc.broken) == {"broken"}
    assert "not_a_module_anywhere" in svc.broken["broken"]
    states = svc.client.locations()
    assert {n for n, e in states.items() if e["ready"]} == {"slow", "steady", "changing"}


def test_redeploying_one_domain_leaves_the_others_and_their_runs_alone(probe: dict, page, shots) -> None:
    svc, settings, extra_env = probe["svc"], probe["settings"], probe["extra_env"]
    run_id = svc.client.launch_assets("slow", [["long_run"]])
    wait_for_status(svc, run_id, "STARTED")
    before = pids(svc)
    shown_before = svc.client.locations()["changing"]["image"]

    write_domain(probe["root"], "changing", CHANGING_V2)
    done = deploy_location(settings, "changing", dagster_home=svc.dagster_home, extra_env=extra_env)

    assert done.version != done.previous and not done.unchanged
    assert done.added == ["second"] and done.removed == []
    assert set(done.seconds) == {"build", "check", "drain", "stop", "start", "reload"}
    # the artifact: the domain's wheel, kept by version, which the new server imports the domain from
    assert done.artifact is not None and done.artifact.suffix == ".whl"
    assert done.artifact.parent == svc.dagster_home / "deploys" / "changing" / done.version
    site = done.artifact.parent / "site"
    assert (site / PACKAGE / "changing" / "definitions.py").read_text() == CHANGING_V2
    assert str(site) in Path(f"/proc/{done.pid}/cmdline").read_bytes().decode().split("\0")
    after = pids(svc)
    assert after["changing"] == done.pid != before["changing"]
    assert not pid_alive(before["changing"]), "the replaced code server still runs"
    for name in ("slow", "steady", "broken"):
        assert after[name] == before[name] and pid_alive(after[name]), f"{name}'s code server was touched"
    # the run of another domain is still in flight on its untouched server
    (run,) = svc.client.runs(run_ids=[run_id])
    assert run["status"] == "STARTED"
    shown = svc.client.locations()["changing"]
    assert shown["ready"] and shown["image"] == f"mesh/changing:{done.version}" != shown_before

    # the UI: the code location's new version, and the new asset (`page` fails or skips first
    # when there is no browser, as tests/ui/conftest.py says)
    from playwright.sync_api import expect

    page.goto(f"{svc.url}/locations")
    expect(page.get_by_text(f"mesh/changing:{done.version}")).to_be_visible(timeout=UI_TIMEOUT)
    shots.take(page, "deploy-code-locations")
    page.goto(f"{svc.url}/assets/second")
    expect(page.get_by_text("Added by the second version of the domain.").first).to_be_visible(
        timeout=UI_TIMEOUT
    )
    shots.take(page, "deploy-new-asset")

    # what serves is the artifact: a source edit without a deploy changes nothing, even on reload
    write_domain(probe["root"], "changing", CHANGING_V2.replace("Added by the second", "Edited after the"))
    svc.client.reload_location("changing")
    assert svc.client.locations()["changing"]["image"] == f"mesh/changing:{done.version}"
    described = svc.client.graphql('{ assetNodes(assetKeys: [{path: ["second"]}]) { description } }')[
        "assetNodes"
    ]
    assert described == [{"description": "Added by the second version of the domain."}]
    write_domain(probe["root"], "changing", CHANGING_V2)

    # a domain's own run in flight holds its deploy back (its process is a child of the server)
    with pytest.raises(LocalDeployError, match=r"still in flight .*nothing was replaced"):
        deploy_location(
            settings, "slow", dagster_home=svc.dagster_home, extra_env=extra_env, force=True, drain_timeout=2
        )
    assert pids(svc)["slow"] == before["slow"]

    probe["release"].touch()
    assert wait_for_status(svc, run_id, "SUCCESS")["status"] == "SUCCESS"


def test_a_domain_that_does_not_load_is_never_swapped_in(probe: dict) -> None:
    svc, settings, extra_env = probe["svc"], probe["settings"], probe["extra_env"]
    serving = pids(svc)["changing"]
    version = read_state(svc.state_file)["locations"]["changing"]["version"]
    running_source = (probe["root"] / PACKAGE / "changing" / "definitions.py").read_text()

    write_domain(probe["root"], "changing", BROKEN)
    with pytest.raises(
        LocalDeployError,
        match=rf"(?s)nothing was replaced and version {version} keeps serving.*not_a_module_anywhere",
    ):
        deploy_location(settings, "changing", dagster_home=svc.dagster_home, extra_env=extra_env)
    assert pids(svc)["changing"] == serving and pid_alive(serving)
    assert svc.client.locations()["changing"]["ready"]

    # fixed again: the source is the running version, and `mesh deploy` says so without a restart
    write_domain(probe["root"], "changing", running_source)
    result = mesh(probe, "deploy", "changing")
    assert result.returncode == 0, result.stderr
    assert f"version {version} already serving" in result.stdout
    assert pids(svc)["changing"] == serving


def test_status_lists_every_location_with_its_version_server_and_ui_state(probe: dict) -> None:
    result = mesh(probe, "deploy", "--status", "--workspace", str(probe["workspace"]))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"slow", "steady", "changing", "broken"}
    state = read_state(probe["svc"].state_file)
    header = result.stdout.splitlines()[0].split()
    for name in ("slow", "steady", "changing"):
        assert state["locations"][name]["version"] in rows[name]
        assert "serving" in rows[name] and "LOADED" in rows[name]
        # the server's memory, its code-loading child included: more than a bare Python's
        memory = float(rows[name].split()[header.index("MB")])
        assert 50 < memory < 4000, rows[name]
    assert "failed: " in rows["broken"] and "not_a_module_anywhere" in rows["broken"]
