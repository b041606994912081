"""The catalog export after a real publication: the real daemon, the real SDK, and the run in the UI.

A product is published by a run the webserver launched; the daemon's `mesh_lineage_on_publish`
sensor then requests an export run of its own (the publishing run is not slowed), which sends the
mesh to the loopback OpenMetadata of ``tests/lineage/om_server.py`` (every request validated with
the SDK's models). The browser then finds that run, its log line and the sensor's tick in the UI.

The workspace holds the producing domain and the platform's own location only, so no cross-domain
sensor starts runs of its own beside the export (those are tested in ``tests/automation``).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect

from mesh_assets.settings import REPO_ROOT, MeshSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lineage"))
from om_server import LoopbackOpenMetadata, jwt_token

pytestmark = pytest.mark.slow

TOKEN = jwt_token("mesh-export-bot")
PRODUCT = ["benchmarks", "country_regions"]
LOCATIONS = {"benchmarks", "mesh_lineage"}
TICK = 5  # MESH_TRIGGER_INTERVAL: the export sensor's interval here (seconds)
# ceilings, not expectations: a loaded 2-core machine may take minutes; waits end at the event
SENSOR_TIMEOUT = 300
RUN_TIMEOUT = 900
UI_TIMEOUT = 60_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def catalog() -> Iterator[LoopbackOpenMetadata]:
    import metadata.ingestion.ometa.ometa_api  # noqa: F401  (the server validates with the SDK's models)

    with LoopbackOpenMetadata(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def exporting_mesh(chromium, catalog: LoopbackOpenMetadata, tmp_path_factory: pytest.TempPathFactory):
    """Daemon, webserver and code servers with the catalog configured as a user would (URL + token)."""
    from mesh_assets.orchestration.services import DagsterServices

    root = tmp_path_factory.mktemp("catalog-export")
    workspace = root / "workspace.yaml"
    entries = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"]
    kept = [e for e in entries if e["python_module"]["location_name"] in LOCATIONS]
    assert {e["python_module"]["location_name"] for e in kept} == LOCATIONS
    workspace.write_text(yaml.safe_dump({"load_from": kept}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    environ |= {
        "MESH_HOME": str(root / "mesh"),
        "MESH_PROFILE": "local",
        "MESH_OPENMETADATA_URL": catalog.url,
        "MESH_OPENMETADATA_TOKEN": TOKEN,
        "MESH_TRIGGER_INTERVAL": str(TICK),
    }
    settings = MeshSettings.from_env("local", environ)
    with DagsterServices(settings, daemon=True, webserver_port=_free_port(), workspace=workspace) as svc:
        yield settings, svc


def _export_runs(svc) -> list[dict]:
    from mesh_assets.lineage.automation import SENSOR_NAME

    return svc.client.runs(tags={"dagster/sensor_name": SENSOR_NAME})


def test_a_publication_starts_an_export_run_that_sends_the_product(exporting_mesh, catalog):
    from mesh_assets.lineage.automation import JOB_NAME, TRIGGER_TAG
    from mesh_assets.lineage.openmetadata import PIPELINE_SERVICE, table_fqn

    settings, svc = exporting_mesh
    assert _export_runs(svc) == []  # nothing was published yet: the sensor requested nothing
    run_id = svc.client.launch_assets("benchmarks", [PRODUCT])
    produced = svc.client.wait_for_run(run_id, timeout=RUN_TIMEOUT)
    assert produced["status"] == "SUCCESS", "\n".join(svc.client.run_errors(run_id))

    deadline = time.monotonic() + SENSOR_TIMEOUT
    while not (requested := _export_runs(svc)) and time.monotonic() < deadline:
        time.sleep(1)
    assert requested, f"no export run {SENSOR_TIMEOUT}s after the publication"
    export = svc.client.wait_for_run(requested[-1]["runId"], timeout=RUN_TIMEOUT)
    assert export["status"] == "SUCCESS", "\n".join(svc.client.run_errors(export["runId"]))
    assert export["tags"][TRIGGER_TAG] == "/".join(PRODUCT)
    # its own run, of the platform's job, started once the publishing run had ended
    assert export["runId"] != run_id and export["location"] == "mesh_lineage"
    assert export["startTime"] >= produced["endTime"]
    with svc.open_instance() as instance:
        assert instance.get_run_by_id(export["runId"]).job_name == JOB_NAME
        logged = "\n".join(e.message or "" for e in instance.all_logs(export["runId"]))
    assert "sent" in logged and TOKEN not in logged  # its report is in the run's log; the token is not

    store = catalog.store
    # the product's contract check result of that very run, and the producing pipeline's status
    case = f"{table_fqn(tuple(PRODUCT), settings.trino_catalog)}.contract"
    assert [r["testCaseStatus"] for r in store.results[case]] == ["Success"]
    assert run_id in store.results[case][0]["result"]
    status = store.statuses[f"{PIPELINE_SERVICE}.benchmarks"][-1]
    assert status["executionStatus"] == "Successful"
    assert "/".join(PRODUCT) in [t["name"] for t in status["taskStatus"]]
    # the whole mesh went with it: every domain's schema and the lineage edges
    schemas = {fqn.split(".")[-1] for fqn in store.entities["databaseSchemas"]}
    assert {"benchmarks", "companies", "emissions", "portfolio_alignment"} <= schemas
    assert store.lineage


def test_the_ui_shows_the_export_run_and_the_tick_that_requested_it(exporting_mesh, page, shots):
    from mesh_assets.lineage.automation import JOB_NAME, SENSOR_NAME

    _, svc = exporting_mesh
    runs = _export_runs(svc)
    assert runs, "the previous test's export run is missing"
    run_id = runs[-1]["runId"]

    page.goto(f"{svc.url}/runs/{run_id}")
    expect(page.get_by_text(JOB_NAME).first).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    # the export's own report in the run's log
    summary = re.compile(r"OpenMetadata at http://127\.0\.0\.1:\d+: sent \d+ change\(s\)")
    expect(page.get_by_text(summary).first).to_be_visible(timeout=UI_TIMEOUT)
    assert TOKEN not in page.content()
    shots.take(page, "catalog-export-run")

    page.goto(f"{svc.url}/locations/mesh_lineage/sensors/{SENSOR_NAME}")
    expect(page.get_by_text(SENSOR_NAME).first).to_be_visible(timeout=UI_TIMEOUT)
    # the tick that requested the export links to its run
    expect(page.locator(f"a[href^='/runs/{run_id}']").first).to_be_visible(timeout=UI_TIMEOUT)
    shots.take(page, "catalog-export-sensor")
