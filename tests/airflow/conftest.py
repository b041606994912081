"""A real Airflow (2.11.2, then 3.x) and the real Dagster services around the companies' legacy DAG.

One session-scoped bridge per Airflow major version, started once and stopped before the next
(the machine has two cores): ``deploy/local/airflow.sh up`` (installs Airflow into its own cached
venv if needed, generates the credentials, starts it on a loopback port with SQLite) on a copy of
``airflow/dags`` (the tests flip its proxied state), then ``DagsterServices`` (code servers,
webserver, daemon) on a workspace of the companies domain's two locations as workspace.yaml lists
them: ``companies_airflow`` (the DAG observed with dagster-airlift) and ``companies`` (with
``market_data``, the product that reads what the DAG publishes).

Under ``CI=true`` an Airflow that cannot be installed or started fails the tests; elsewhere they
skip with the script's error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from airflow_bridge import DAG_ID, TICK, VERSIONS, free_port

from mesh_assets.airflow import AirflowConnection
from mesh_assets.airflow.connection import call
from mesh_assets.orchestration.services import DagsterServices
from mesh_assets.settings import REPO_ROOT, MeshSettings

IN_CI = os.environ.get("CI", "").lower() == "true"
AIRFLOW_SH = REPO_ROOT / "deploy" / "local" / "airflow.sh"
SAMPLE = REPO_ROOT / "airflow" / "dags" / "companies" / "sample" / "market_data_2026-11-27.csv"
ARTIFACTS = REPO_ROOT / ".mesh" / "test-artifacts" / "airflow"


@dataclass
class Bridge:
    """Everything a test needs: the Airflow, the Dagster services, and the folders they share."""

    major: str
    version: str
    settings: MeshSettings
    connection: AirflowConnection
    svc: DagsterServices
    dags_dir: Path
    raw_dir: Path
    script_env: dict[str, str]
    measured: dict[str, float | str] = field(default_factory=dict)

    @property
    def client(self):
        return self.svc.client

    def airflow(self, method: str, path: str, **kwargs):
        """One authenticated REST call to the Airflow (API base of its version)."""
        return call(self.connection.instance("mesh_test"), method, path, **kwargs)

    def set_proxied(self, task_id: str, proxied: bool, timeout: float = 240) -> None:
        """Flip a task in the DAG's proxied_state yaml and wait until Airflow has re-parsed the DAG."""
        path = self.dags_dir / "companies" / "proxied_state" / f"{DAG_ID}.yaml"
        state = yaml.safe_load(path.read_text())
        for task in state["tasks"]:
            if task["id"] == task_id:
                task["proxied"] = proxied
        path.write_text(yaml.safe_dump(state, sort_keys=False))
        dag_file = self.dags_dir / "companies" / "vendor_market_data.py"
        os.utime(dag_file)  # a new mtime: every Airflow version re-parses a changed file
        wanted = f"{sum(t['proxied'] for t in state['tasks'])} Task"
        deadline = time.monotonic() + timeout
        tags: list[str] = []
        while time.monotonic() < deadline:
            response = self.airflow("get", f"/dags/{DAG_ID}")
            if response.status_code == 200:
                tags = [t["name"] for t in response.json().get("tags", [])]
                if any(t.startswith(wanted) and "Proxied to Dagster" in t for t in tags):
                    return
            time.sleep(1)
        raise AssertionError(
            f"Airflow did not re-parse {DAG_ID} with {wanted}(s) proxied in {timeout}s: {tags}"
        )

    def airflow_run(self, run_id: str) -> dict:
        response = self.airflow("get", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def launch_job(self, location: str, job: str) -> str:
        from mesh_assets.orchestration import graphql as gql
        from mesh_assets.orchestration.dagster_internals import SINGLETON_REPOSITORY

        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": SINGLETON_REPOSITORY,
                "pipelineName": job,
            },
            "mode": "default",
            "executionMetadata": {"tags": []},
        }
        result = self.client.graphql(gql.LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        failure = gql.launch_failure(result)
        assert failure is None, failure
        return result["run"]["runId"]

    def record(self, **values: float | str) -> None:
        self.measured.update(values)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"measurements-airflow-{self.version}.json").write_text(
            json.dumps(self.measured, indent=2)
        )
        print(f"[airflow {self.version}] {values}")


def _script(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(AIRFLOW_SH), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _mesh(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _rss_mb(env: dict[str, str]) -> str:
    status = _script(["status"], env, 60).stdout
    return status.rsplit("(", 1)[-1].split(" MB")[0] if "MB" in status else "?"


# Module scope, not session: pytest finalizes a session-scoped parametrized fixture's last param only
# when the session ends, so Airflow 3 (api-server, scheduler, dag-processor) and the bridge's Dagster
# daemon kept running, ticking, beside every later test of the suite.
@pytest.fixture(scope="module", params=sorted(VERSIONS), ids=[f"airflow{m}" for m in sorted(VERSIONS)])
def bridge(request):
    major = request.param
    version, port = VERSIONS[major]
    # under the test artifacts, not pytest's tmp: Airflow's task logs and the services' logs stay
    # for inspection after a failure (pytest keeps only its last few tmp folders)
    tmp = ARTIFACTS / f"airflow{major}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    raw_dir = tmp / "raw"
    (raw_dir / "vendor" / "incoming").mkdir(parents=True)
    shutil.copy(SAMPLE, raw_dir / "vendor" / "incoming" / SAMPLE.name)
    dags_dir = tmp / "dags"
    shutil.copytree(REPO_ROOT / "airflow" / "dags", dags_dir)
    dagster_port = free_port()
    settings = MeshSettings.from_env(
        "local",
        environ={
            **{k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_", "AIRFLOW"))},
            "MESH_HOME": str(tmp / "mesh"),
            "MESH_RAW_DIR": str(raw_dir),
            "MESH_PORT_AIRFLOW": str(port),
            "MESH_PORT_DAGSTER_WEBSERVER": str(dagster_port),
            "MESH_TRIGGER_INTERVAL": str(TICK),
        },
    )
    script_env = settings.process_env(
        {
            "MESH_AIRFLOW_VERSION": version,
            "MESH_AIRFLOW_DAGS_DIR": str(dags_dir),
            "MESH_AIRFLOW_DATA_DIR": str(raw_dir),
            "MESH_AIRFLOW_DAGSTER_URL": f"http://{settings.host}:{dagster_port}",
        }
    )
    measured: dict[str, float | str] = {}
    started = time.monotonic()
    install = _script(["install"], script_env, 1800)
    measured["install_s"] = round(time.monotonic() - started, 1)
    measured["install_cached"] = "installing" not in install.stderr
    # started the way a user starts it (the same script behind the platform's command)
    up = install if install.returncode else _mesh(["infra", "up", "airflow"], script_env, 900)
    measured["start_s"] = round(time.monotonic() - started - measured["install_s"], 1)
    if up.returncode:
        _script(["down"], script_env, 120)
        message = f"Airflow {version} could not be installed or started: {up.stderr.strip()[-1500:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        connection = AirflowConnection.from_settings(settings).detect()
        assert connection.version == int(major), connection
        _wait_for_dag(connection)
        measured["airflow_rss_mb"] = _rss_mb(script_env)
        workspace = tmp / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "python_module": {
                                "module_name": "domains.companies.airflow_location",
                                "location_name": "companies_airflow",
                            }
                        },
                        {
                            "python_module": {
                                "module_name": "domains.companies.definitions",
                                "location_name": "companies",
                            }
                        },
                    ]
                }
            )
        )
        t0 = time.monotonic()
        with DagsterServices(
            settings, webserver_port=dagster_port, workspace=workspace, log_dir=tmp / "dagster-logs"
        ) as svc:
            measured["dagster_services_start_s"] = round(time.monotonic() - t0, 1)
            b = Bridge(major, version, settings, connection, svc, dags_dir, raw_dir, script_env)
            b.record(**measured)
            yield b
    finally:
        down = _mesh(["infra", "down", "airflow"], script_env, 300)
        assert down.returncode == 0, down.stderr[-2000:]


def _wait_for_dag(connection: AirflowConnection, timeout: float = 300) -> None:
    instance = connection.instance("mesh_test")
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        response = call(instance, "get", f"/dags/{DAG_ID}")
        if response.status_code == 200:
            return
        last = response.text[:300]
        time.sleep(1)
    errors = call(instance, "get", "/importErrors").text[:2000]
    raise AssertionError(f"Airflow never parsed {DAG_ID} in {timeout}s ({last}); import errors: {errors}")
