"""The cross-domain sensor's rules, tick by tick, on an ephemeral instance (no daemon, a few seconds).

Upstream: the throwaway ``trades`` domain with a contract (write-audit-publish, blocking check).
Downstream: a ``risk`` domain whose ``limits`` reads ``trades/positions`` across domains.
"""

import types

import dagster as dg
import pandas as pd
import pytest
from contract_domain import GOOD, build_trades_domain, run_trades

from mesh_assets.definitions import build_domain_definitions
from mesh_assets.orchestration.automation import UPSTREAM_RUNS_TAG, UPSTREAM_TAG, sensor_name

POSITIONS = dg.AssetKey(["trades", "positions"])
LIMITS = dg.AssetKey(["risk", "limits"])


@pytest.fixture
def mesh(mesh_home, tmp_path):
    trades = build_trades_domain(tmp_path / "pkgs")

    @dg.asset(key_prefix="risk", ins={"positions": dg.AssetIn(key=["trades", "positions"])})
    def limits(positions: pd.DataFrame) -> pd.DataFrame:
        return positions.groupby("account", as_index=False)["weight"].sum()

    module = types.ModuleType("risk_assets")
    module.__file__ = str(tmp_path / "risk" / "assets.py")  # no contracts folder: ungoverned
    module.limits = limits
    risk = build_domain_definitions("risk", module)
    with dg.DagsterInstance.ephemeral() as instance:
        yield trades, risk, instance


class Ticker:
    """Evaluates the sensor as the daemon would, carrying the cursor from tick to tick."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.sensor = defs.resolve_sensor_def(sensor_name("risk"))
        self.instance, self.cursor, self.defs = instance, None, defs

    def tick(self):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
        data = self.sensor.evaluate_tick(context)
        if data.cursor is not None:
            self.cursor = data.cursor
        return data


def _materialize_limits(risk, instance):
    result = risk.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[LIMITS]
    )
    assert result.success


def test_the_sensor_is_generated_from_the_declared_dependency(mesh):
    _, risk, _ = mesh
    sensor = risk.resolve_sensor_def(sensor_name("risk"))
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 15
    assert "trades/positions" in sensor.description


def test_published_triggers_a_failed_contract_check_does_not(mesh):
    trades, risk, instance = mesh
    ticker = Ticker(risk, instance)
    assert not ticker.tick().run_requests  # nothing published yet

    good = run_trades(trades, GOOD, instance)
    assert good.success
    [request] = ticker.tick().run_requests
    assert request.asset_selection == [LIMITS]
    assert request.tags[UPSTREAM_TAG] == "trades/positions"
    assert request.tags[UPSTREAM_RUNS_TAG] == good.run_id
    assert not ticker.tick().run_requests  # decided once

    bad = run_trades(trades, {**GOOD, "side": ["long", "sideways", "long"]}, instance)
    assert not bad.success
    # the audit-branch write was recorded as a materialization, then the check failed
    assert instance.get_latest_materialization_event(POSITIONS).run_id == bad.run_id
    data = ticker.tick()
    assert not data.run_requests
    assert "trades/positions: not published" in data.skip_message
    assert "['contract'] failed" in data.skip_message


def test_an_up_to_date_consumer_is_not_rerun_and_a_runless_report_triggers(mesh):
    trades, risk, instance = mesh
    ticker = Ticker(risk, instance)
    assert run_trades(trades, GOOD, instance).success
    _materialize_limits(risk, instance)  # the consumer already read this publication
    data = ticker.tick()
    assert not data.run_requests, data.skip_message

    instance.report_runless_asset_event(dg.AssetMaterialization(POSITIONS))
    [request] = ticker.tick().run_requests
    assert request.asset_selection == [LIMITS]
    assert UPSTREAM_RUNS_TAG not in request.tags


def test_a_tick_reads_the_instance_in_batches(mesh, monkeypatch):
    """Nothing new since the cursor: one read of the asset index, none of any product's events.
    Something new: that product's events, and no per-asset query of what is in progress while no
    run is unfinished (``mesh bench scale``: per-asset queries made a tick cost ~1 ms an asset)."""
    trades, risk, instance = mesh
    ticker = Ticker(risk, instance)
    assert run_trades(trades, GOOD, instance).success
    assert ticker.tick().run_requests  # decided: the cursor now holds this publication
    reads = []
    fetch = instance.fetch_materializations
    monkeypatch.setattr(instance, "fetch_materializations", lambda *a, **k: reads.append(a) or fetch(*a, **k))
    data = ticker.tick()
    assert not data.run_requests and reads == []
    planned = []
    info = instance.get_latest_planned_materialization_info
    monkeypatch.setattr(
        instance,
        "get_latest_planned_materialization_info",
        lambda *a, **k: planned.append(a) or info(*a, **k),
    )
    instance.report_runless_asset_event(dg.AssetMaterialization(POSITIONS))
    [request] = ticker.tick().run_requests  # a new publication is still seen, and read
    assert request.asset_selection == [LIMITS]
    # its events only; the targets' latest in one read; no run unfinished, so none in progress
    assert {a[0].asset_key if hasattr(a[0], "asset_key") else a[0] for a in reads} == {POSITIONS}
    assert planned == []


def test_a_run_in_progress_is_decided_later(mesh):
    trades, risk, instance = mesh
    ticker = Ticker(risk, instance)
    good = run_trades(trades, GOOD, instance)
    # pretend the run is still going: the materialization is not final yet
    run = instance.get_run_by_id(good.run_id)
    instance.run_storage.handle_run_event(
        good.run_id,
        dg.DagsterEvent(
            event_type_value="PIPELINE_START",
            job_name=run.job_name,
        ),
    )
    assert instance.get_run_by_id(good.run_id).status is dg.DagsterRunStatus.STARTED
    data = ticker.tick()
    assert not data.run_requests
    assert "waiting" in data.skip_message and good.run_id in data.skip_message
    instance.run_storage.handle_run_event(
        good.run_id, dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name)
    )
    [request] = ticker.tick().run_requests
    assert request.tags[UPSTREAM_RUNS_TAG] == good.run_id


def test_a_time_partitioned_consumer_refreshes_its_latest_partition(mesh_home, tmp_path):
    trades = build_trades_domain(tmp_path / "pkgs")
    daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")

    @dg.asset(
        key_prefix="risk",
        partitions_def=daily,
        ins={"positions": dg.AssetIn(key=["trades", "positions"])},
        metadata={"partition_expr": "day"},
    )
    def daily_limits(context: dg.AssetExecutionContext, positions: pd.DataFrame) -> pd.DataFrame:
        return positions.assign(day=context.partition_key)

    module = types.ModuleType("risk_daily_assets")
    module.__file__ = str(tmp_path / "risk" / "assets.py")
    module.daily_limits = daily_limits
    risk = build_domain_definitions("risk", module)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_trades(trades, GOOD, instance).success
        [request] = Ticker(risk, instance).tick().run_requests
        assert request.asset_selection == [dg.AssetKey(["risk", "daily_limits"])]
        assert request.partition_key == daily.get_last_partition_key()
