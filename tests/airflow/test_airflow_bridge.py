"""Airflow bridging against a real Airflow 2.11 and a real Airflow 3, with the real Dagster daemon.

On each version, in order (the tests share the session's Airflow and Dagster instance):

1. the legacy DAG is in the mesh's graph: its tasks' keys upstream of the companies product;
2. migrate: ``publish_market_data`` switched to proxied runs as a Dagster asset inside the DAG run,
   which the mesh starts with the trigger job and waits for;
3. back: switched back, a DAG run started in Airflow publishes from Airflow; airlift's sensor
   records the materializations and the companies trigger sensor (run by the daemon) refreshes
   ``companies/market_data`` after it;
4. a failing task, a paused DAG, wrong credentials and a stopped server each give one sentence.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime

import dagster as dg
import pytest
from airflow_bridge import DAG_ID, TICK, free_port

from mesh_assets.airflow import (
    AirflowCredentialsRejected,
    AirflowUnreachable,
    build_airflow_definitions,
    trigger_and_wait,
)
from mesh_assets.orchestration.automation import UPSTREAM_RUNS_TAG, UPSTREAM_TAG, sensor_name
from mesh_assets.settings import REPO_ROOT

pytestmark = pytest.mark.slow

JOB = f"{DAG_ID}__run_in_airflow"
PUBLISHED = dg.AssetKey(["companies", "vendor_market_data"])
STAGED = dg.AssetKey(["companies", "vendor_market_data_staged"])
PRODUCT = ["companies", "market_data"]
COMPANIES_SENSOR = sensor_name("companies")
TASK_TAG = "dagster-airlift/airflow-task-id"
DAG_RUN_TAG = "dagster-airlift/airflow-dag-run-id"
SENSOR_TAG = "dagster/sensor_name"

NODES = """
{ assetNodes { assetKey { path } dependencyKeys { path } isMaterializable
  repository { location { name } } metadataEntries { label } } }
"""


def _manifest(bridge) -> dict:
    return json.loads((bridge.raw_dir / "vendor" / "market_data.json").read_text())


def _wait(what: str, probe, timeout: float = 300.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def _sensor_runs(bridge, after: set[str]) -> list[dict]:
    return [r for r in bridge.client.runs(tags={SENSOR_TAG: COMPANIES_SENSOR}) if r["runId"] not in after]


def _iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_the_legacy_dag_is_upstream_of_the_mesh_product(bridge):
    nodes = {tuple(n["assetKey"]["path"]): n for n in bridge.client.graphql(NODES)["assetNodes"]}
    published = nodes[tuple(PUBLISHED.path)]
    assert published["repository"]["location"]["name"] == "companies_airflow"
    assert published["isMaterializable"]  # the Dagster implementation of the migrated task
    assert "dagster-airlift/task-mapping" in {m["label"] for m in published["metadataEntries"]}
    assert {"path": list(STAGED.path)} in published["dependencyKeys"]
    product = nodes[tuple(PRODUCT)]
    assert product["repository"]["location"]["name"] == "companies"
    assert {"path": list(PUBLISHED.path)} in product["dependencyKeys"]
    dag_asset = nodes[("companies_airflow", "dag", DAG_ID)]
    assert {"path": list(PUBLISHED.path)} in dag_asset["dependencyKeys"]


def test_a_task_migrated_to_dagster_runs_there_when_the_mesh_triggers_the_dag(bridge):
    bridge.set_proxied("publish_market_data", True)
    job_run = bridge.client.wait_for_run(bridge.launch_job("companies_airflow", JOB), timeout=900)
    if job_run["status"] != "SUCCESS":
        pytest.fail("\n".join(bridge.client.run_errors(job_run["runId"])), pytrace=False)
    # the publish task ran as a Dagster run of its asset, inside the Airflow DAG run
    proxied = bridge.client.runs(tags={TASK_TAG: "publish_market_data"})
    assert len(proxied) == 1, proxied
    assert proxied[0]["status"] == "SUCCESS"
    assert proxied[0]["assetSelection"] == [list(PUBLISHED.path)]
    dag_run_id = proxied[0]["tags"][DAG_RUN_TAG]
    assert bridge.airflow_run(dag_run_id)["state"] == "success"
    assert _manifest(bridge)["published_by"].startswith(f"dagster:{proxied[0]['runId']} ")
    # what the migrated task published refreshes the mesh like any publication
    downstream = _wait(
        "the companies run triggered by the migrated task's publication",
        lambda: [
            r
            for r in bridge.client.runs(tags={SENSOR_TAG: COMPANIES_SENSOR})
            if proxied[0]["runId"] in r["tags"].get(UPSTREAM_RUNS_TAG, "")
        ],
    )
    assert bridge.client.wait_for_run(downstream[0]["runId"], timeout=600)["status"] == "SUCCESS"
    # the other tasks stayed in Airflow: airlift's sensor records the staged table for this run
    with bridge.svc.open_instance() as instance:
        _wait(
            "materialization of the staged table from the Airflow run",
            lambda: any(
                getattr(r.asset_materialization.metadata.get("dagster-airlift/airflow-run-id"), "value", None)
                == dag_run_id
                for r in instance.fetch_materializations(STAGED, limit=5).records
            ),
        )


def test_switched_back_a_dag_run_in_airflow_is_observed_and_refreshes_the_mesh(bridge):
    bridge.set_proxied("publish_market_data", False)
    before = {r["runId"] for r in bridge.client.runs(tags={SENSOR_TAG: COMPANIES_SENSOR})}
    proxied_before = len(bridge.client.runs(tags={TASK_TAG: "publish_market_data"}))
    # a run started in Airflow, as its vendor-drop trigger would: airlift's own client (or the adapter)
    instance = bridge.connection.instance("mesh_test")
    dag_run_id = instance.trigger_dag(DAG_ID)
    instance.wait_for_run_completion(DAG_ID, dag_run_id, timeout=900)
    airflow_run = bridge.airflow_run(dag_run_id)
    assert airflow_run["state"] == "success", airflow_run
    assert _manifest(bridge)["published_by"] == f"airflow:{DAG_ID}/{dag_run_id}"
    assert len(bridge.client.runs(tags={TASK_TAG: "publish_market_data"})) == proxied_before

    with bridge.svc.open_instance() as dagster:

        def observed():
            for record in dagster.fetch_materializations(PUBLISHED, limit=5).records:
                meta = record.asset_materialization.metadata
                if getattr(meta.get("dagster-airlift/airflow-run-id"), "value", None) == dag_run_id:
                    return record
            return None

        record = _wait("airlift's materialization of companies/vendor_market_data", observed)
    assert record.event_log_entry.run_id == ""  # runless: published by Airflow, not by a Dagster run
    new = _wait("a companies run from its trigger sensor", lambda: _sensor_runs(bridge, before), timeout=300)
    triggered = bridge.client.wait_for_run(new[-1]["runId"], timeout=600)
    if triggered["status"] != "SUCCESS":
        pytest.fail("\n".join(bridge.client.run_errors(triggered["runId"])), pytrace=False)
    assert PRODUCT in triggered["assetSelection"]
    assert PUBLISHED.to_user_string() in triggered["tags"][UPSTREAM_TAG]
    assert UPSTREAM_RUNS_TAG not in triggered["tags"]  # caused by the runless (Airflow) publication
    ended = _iso(airflow_run["end_date"])
    latency = triggered["creationTime"] - ended
    assert latency >= 0, (triggered["creationTime"], airflow_run["end_date"])
    bridge.record(dag_end_to_downstream_run_s=round(latency, 1), sensor_interval_s=TICK)
    # the product read what the DAG published
    rows = bridge.client.latest_materializations([PRODUCT])[tuple(PRODUCT)]
    assert rows.get("rows") == _manifest(bridge)["rows"]


def test_a_failing_task_fails_the_mesh_job_with_its_error(bridge):
    bad = bridge.raw_dir / "vendor" / "incoming" / "market_data_2099-01-01.csv"  # the newest drop
    good = (bridge.raw_dir / "vendor" / "incoming").glob("market_data_2026-*.csv")
    lines = next(good).read_text().splitlines()
    lines[2] = lines[2].replace(",4285299935,", ",-4285299935,")
    assert "-4285299935" in lines[2]
    bad.write_text("\n".join(lines) + "\n")
    try:
        run = bridge.client.wait_for_run(bridge.launch_job("companies_airflow", JOB), timeout=900)
    finally:
        bad.unlink()
    assert run["status"] == "FAILURE"
    errors = " ".join(bridge.client.run_errors(run["runId"]))
    assert f"of DAG {DAG_ID} failed at task validate_market_data" in errors, errors
    assert "market_cap '-4285299935' is not a positive number" in errors, errors


def test_a_paused_dag_fails_the_mesh_job_at_once_with_one_sentence(bridge):
    response = bridge.airflow("patch", f"/dags/{DAG_ID}", json={"is_paused": True})
    assert response.status_code == 200, response.text
    try:
        run = bridge.client.wait_for_run(bridge.launch_job("companies_airflow", JOB), timeout=300)
    finally:
        response = bridge.airflow("patch", f"/dags/{DAG_ID}", json={"is_paused": False})
        assert response.status_code == 200, response.text
    assert run["status"] == "FAILURE"
    errors = " ".join(bridge.client.run_errors(run["runId"]))
    assert f"DAG {DAG_ID} is paused in Airflow at {bridge.connection.url}: unpause it" in errors, errors


def test_wrong_credentials_and_a_stopped_airflow_are_one_sentence(bridge):
    wrong = dataclasses.replace(bridge.connection, password="not-the-password")
    with pytest.raises(AirflowCredentialsRejected) as rejected:
        trigger_and_wait(wrong, DAG_ID)
    message = str(rejected.value)
    assert f"Airflow at {bridge.connection.url} rejected the credentials of user 'mesh'" in message
    assert "airflow_password" in message and "not-the-password" not in message and "\n" not in message

    stopped = dataclasses.replace(bridge.connection, url=f"http://127.0.0.1:{free_port()}", version=None)
    with pytest.raises(AirflowUnreachable) as unreachable:
        trigger_and_wait(stopped, DAG_ID)
    assert "is unreachable (refused the connection): start it" in str(unreachable.value)

    # the code location: wrong credentials stop it with the same sentence (the team's to fix);
    # an Airflow that does not answer leaves it loading from airflow.yaml, saying so
    config = REPO_ROOT / "domains" / "companies" / "airflow.yaml"
    wrong_password = {**bridge.settings.environ, "MESH_AIRFLOW_PASSWORD": "not-the-password"}
    with pytest.raises(AirflowCredentialsRejected):
        build_airflow_definitions(
            "companies",
            settings=dataclasses.replace(bridge.settings, environ=wrong_password),
            config_path=config,
        )
    port = free_port()
    down = type(bridge.settings).from_env(
        "local", {**bridge.settings.environ, "MESH_PORT_AIRFLOW": str(port)}
    )
    offline = build_airflow_definitions("companies", settings=down, config_path=config).resolve_asset_graph()
    dag = offline.get(dg.AssetKey(["companies_airflow", "dag", DAG_ID]))
    assert f"Airflow at http://127.0.0.1:{port} did not answer" in (dag.description or "")
