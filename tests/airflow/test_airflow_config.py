"""A domain's airflow.yaml: what it may declare, and one sentence when it is wrong (no server needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pytest

from mesh_assets.airflow import AirflowBridgeError, AirflowConfigError, AirflowConnection, load_domain_airflow
from mesh_assets.airflow.v3 import AirflowJwtAuthBackend
from mesh_assets.settings import REPO_ROOT, MeshSettings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airflow.yaml"
    path.write_text(text)
    return path


def test_the_companies_declaration_maps_its_dag_tasks_to_its_own_products():
    config = load_domain_airflow("companies", REPO_ROOT / "domains" / "companies" / "airflow.yaml")
    assert config.instance_name == "companies_airflow"
    [dag] = config.dags
    assert dag.dag_id == "companies_vendor_market_data"
    assert dag.tasks["publish_market_data"] == [dg.AssetKey(["companies", "vendor_market_data"])]
    # the DAG file is where the tasks live, next to the proxied state the migration flips
    dag_dir = REPO_ROOT / "airflow" / "dags" / "companies"
    source = (dag_dir / "vendor_market_data.py").read_text()
    for task in dag.tasks:
        assert f'task_id="{task}"' in source
    assert (dag_dir / "proxied_state" / f"{dag.dag_id}.yaml").is_file()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("dags: {}\n", "'dags' must map at least one dag id"),
        ("dags:\n  d:\n    tasks:\n      t: [emissions/production]\n", "publishes only its own products"),
        ("dags:\n  d:\n    tasks:\n      t: []\n", "dags.d.tasks.t must list asset keys"),
        ("instance: [1]\ndags:\n  d:\n    tasks:\n      t: [companies/x]\n", "'instance' must be a mapping"),
        ("dags: [\n", "is not valid YAML"),
    ],
)
def test_a_wrong_declaration_is_refused_with_the_file_and_field(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(AirflowConfigError) as refused:
        load_domain_airflow("companies", path)
    assert str(path) in str(refused.value)
    assert fragment in str(refused.value)


def test_connection_settings_never_show_the_password(tmp_path):
    settings = MeshSettings.from_env(
        "local", environ={"MESH_HOME": str(tmp_path), "MESH_AIRFLOW_PASSWORD": "s3cret-value"}
    )
    conn = AirflowConnection.from_settings(settings, version="3")
    assert conn.url == f"http://127.0.0.1:{settings.ports.airflow}" and conn.version == 3
    assert "s3cret-value" not in repr(conn)
    assert "s3cret-value" not in repr(AirflowJwtAuthBackend(conn.url, conn.username, conn.password))
    with pytest.raises(AirflowBridgeError, match="use 2, 3 or auto"):
        AirflowConnection.from_settings(settings, version="1.10")


def test_a_missing_password_says_where_to_put_it(tmp_path):
    settings = MeshSettings.from_env("local", environ={"MESH_HOME": str(tmp_path)})
    with pytest.raises(AirflowBridgeError) as missing:
        AirflowConnection.from_settings(settings)
    assert "MESH_AIRFLOW_PASSWORD" in str(missing.value)
    assert "mesh infra up airflow" in str(missing.value)


@pytest.mark.parametrize("version", ["2.11.2", "3.3.2"])
def test_mesh_infra_status_says_airflow_is_down_and_fails(tmp_path, version):
    """`mesh infra status airflow` tells a user their Airflow is not running (and starts nothing)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MESH_HOME": str(tmp_path / "mesh"),
        "MESH_PROFILE": "local",
        "MESH_AIRFLOW_VERSION": version,
    }
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), "infra", "status", "airflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"airflow {version}: down" in result.stdout + result.stderr
    assert not (tmp_path / ".cache" / "mesh" / f"airflow-{version}").exists()  # nothing was installed


def test_the_location_loads_from_airflow_yaml_while_airflow_does_not_answer(tmp_path):
    """No Airflow (and no password yet, as on a fresh clone): the companies' DAG location still loads,
    with the mapped assets, the DAG's job and a stand-in sensor whose tick says why nothing is observed."""
    from domains.companies import legacy_market_data
    from mesh_assets.airflow import build_airflow_definitions
    from mesh_assets.airflow.observe import status_sensor_name
    from mesh_assets.orchestration.runner import AIRFLOW_DAG_TAG
    from tests.ports import free_ports

    (port,) = free_ports(1)  # nothing listens there
    settings = MeshSettings.from_env(
        "local", environ={"MESH_HOME": str(tmp_path), "MESH_PORT_AIRFLOW": str(port)}
    )
    config = REPO_ROOT / "domains" / "companies" / "airflow.yaml"
    defs = build_airflow_definitions("companies", legacy_market_data, settings=settings, config_path=config)
    graph = defs.resolve_asset_graph()
    declared = load_domain_airflow("companies", config)
    for mapped in declared.keys:
        assert graph.get(mapped).tags[AIRFLOW_DAG_TAG] == "companies_vendor_market_data"
    dag = graph.get(dg.AssetKey(["companies_airflow", "dag", "companies_vendor_market_data"]))
    assert f"Airflow at http://127.0.0.1:{port} did not answer" in (dag.description or "")
    assert set(dag.parent_keys) == declared.keys
    assert graph.get(dg.AssetKey(["companies", "vendor_market_data"])).is_materializable  # migrated task
    assert {j.name for j in defs.jobs or []} == {"companies_vendor_market_data__run_in_airflow"}
    sensor = defs.resolve_sensor_def(status_sensor_name("companies_airflow"))
    with dg.instance_for_test() as instance:
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert not tick.run_requests
    assert "no Airflow password" in (tick.skip_message or ""), tick.skip_message

    # a password now, Airflow still down: the tick says it is unreachable and how to start it
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "airflow_password").write_text("x")
    (secrets / "airflow_password").chmod(0o600)
    with dg.instance_for_test() as instance:
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert f"Airflow at http://127.0.0.1:{port} is unreachable" in (tick.skip_message or "")
    assert "start it (`mesh infra up airflow` for the local one)" in (tick.skip_message or "")
