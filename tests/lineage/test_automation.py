"""The export after a publication: a sensor requests an export run; the run exports, or retries and says why."""

from __future__ import annotations

import socket

import dagster as dg
import pytest
from om_server import TOKEN

KEY = ["companies", "company_master"]


def _product(passed: bool) -> dg.AssetsDefinition:
    """A stand-in producer of a mesh product with its blocking contract check (no data written)."""

    @dg.asset(key=KEY, check_specs=[dg.AssetCheckSpec("contract", asset=KEY, blocking=True)])
    def company_master():
        yield dg.Output(1)
        yield dg.AssetCheckResult(passed=passed, check_name="contract", description="rows meet the contract")

    return company_master


@pytest.fixture
def instance(settings, tmp_path):
    """The persistent instance of the settings' profile (what the export reads check results from)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        yield instance
        for run in instance.get_runs():
            instance.delete_run(run.run_id)


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    from mesh_assets.lineage.automation import SENSOR_NAME

    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return sensor(context), context


def test_export_runs_after_a_published_materialization(settings, server, state_path, instance):
    from mesh_assets.lineage.automation import JOB_NAME, TRIGGER_TAG, lineage_definitions
    from mesh_assets.lineage.openmetadata import PIPELINE_SERVICE, table_fqn

    produced = dg.materialize(
        [_product(passed=True)], instance=instance, resources={"io_manager": dg.mem_io_manager}
    )
    assert produced.success
    defs = lineage_definitions(settings, url=server.url)
    result, _ = _tick(defs, instance, None)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.tags[TRIGGER_TAG] == "companies/company_master"
    # nothing new: the next tick requests nothing
    again, _ = _tick(defs, instance, result.cursor)
    assert isinstance(again, dg.SkipReason) and "no new published product" in again.skip_message

    run = defs.get_job_def(JOB_NAME).execute_in_process(instance=instance, tags=request.tags)
    assert run.success
    store = server.store
    case = f"{table_fqn(tuple(KEY), settings.trino_catalog)}.contract"
    assert [r["testCaseStatus"] for r in store.results[case]] == ["Success"]
    assert produced.run_id in store.results[case][0]["result"]
    status = store.statuses[f"{PIPELINE_SERVICE}.companies"][-1]
    assert status["executionStatus"] == "Successful"
    assert [t["name"] for t in status["taskStatus"]] == ["companies/company_master"]
    assert len(store.lineage) > 0 and len(store.entities["tables"]) > 0
    metadata = run.get_step_success_events()[0].step_success_data  # the step reports what it sent
    assert metadata is not None


def test_a_rejected_materialization_requests_no_export(settings, server, instance):
    from mesh_assets.lineage.automation import lineage_definitions

    produced = dg.materialize(
        [_product(passed=False)],
        instance=instance,
        resources={"io_manager": dg.mem_io_manager},
        raise_on_error=False,
    )
    assert not produced.success  # the blocking check failed: the product is not published
    result, _ = _tick(lineage_definitions(settings, url=server.url), instance, None)
    assert isinstance(result, dg.SkipReason)


def test_unreachable_catalog_retries_in_its_own_run_and_says_so(settings, instance):
    from mesh_assets.lineage.automation import JOB_NAME, lineage_definitions

    produced = dg.materialize(
        [_product(passed=True)], instance=instance, resources={"io_manager": dg.mem_io_manager}
    )
    assert produced.success  # the producing run never depends on the catalog
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    defs = lineage_definitions(settings, url=f"http://127.0.0.1:{port}", max_retries=1, retry_wait=0)
    run = defs.get_job_def(JOB_NAME).execute_in_process(instance=instance, raise_on_error=False)
    assert not run.success
    messages = [e.user_message for e in instance.all_logs(run.run_id) if e.user_message]
    assert any(
        f"OpenMetadata at http://127.0.0.1:{port} failed on" in m and "will retry in 0 s (retry 1 of 1)" in m
        for m in messages
    ), messages
    assert any("No retry left" in m for m in messages)
    assert TOKEN not in "\n".join(messages)
