"""Contracts enforced by the platform: blocking GX checks, write-audit-publish, schema enforcement."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from contract_domain import GOOD, build_trades_domain, run_trades

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import get_settings


@pytest.fixture
def domain(mesh_home, tmp_path):
    """A throwaway domain package `trades_domain` with one contract, built by the platform."""
    return build_trades_domain(tmp_path / "pkgs")


def _table():
    return load_catalog(get_settings()).load_table("trades.positions")


def test_contract_shapes_the_asset_definition(domain):
    _, defs = domain
    spec = defs.resolve_asset_graph().get(dg.AssetKey(["trades", "positions"]))
    assert set(spec.owners) == {"trades-owners@mesh.example", "team:trades"}
    assert spec.tags["mesh/contract_version"] == "1.2.0"
    assert spec.description == "Open positions per account, the book of record for risk."
    columns = spec.metadata["dagster/column_schema"].columns
    assert [(c.name, c.type, c.constraints.nullable) for c in columns] == [
        ("account", "string", False),
        ("instrument", "string", False),
        ("side", "string", False),
        ("weight", "double", True),
    ]
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {"contract"}
    assert spec.freshness_policy.fail_window.to_timedelta() == timedelta(hours=24)


def test_passing_data_is_audited_then_published(domain):
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_trades(domain, GOOD, instance)
        assert result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.passed
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        assert meta["published"] is True and meta["failed_expectations"] == 0
        assert Path(meta["report"]).read_text().count("<tr class=ok>") == meta["expectations"]
        table = _table()
        assert list(table.refs()) == ["main"]  # the audit branch is gone
        assert table.current_snapshot().snapshot_id == meta["published_snapshot_id"]
        assert len(table.scan().to_arrow()) == 3
        # downstream in the same run read the published data
        exposure = load_catalog(get_settings()).load_table("trades.exposure").scan().to_pandas()
        assert dict(zip(exposure["side"], exposure["weight"], strict=True)) == pytest.approx(
            {"long": 0.8, "short": 0.2}
        )


@pytest.mark.parametrize(
    ("change", "expectation", "column", "sample"),
    [
        ({"account": ["A1", None, "A2"]}, "expect_column_values_to_not_be_null", "account", [None]),
        ({"side": ["long", "sideways", "long"]}, "expect_column_values_to_be_in_set", "side", ["sideways"]),
        ({"weight": [0.5, 1.7, 0.3]}, "expect_column_values_to_be_between", "weight", [1.7]),
        (
            {"instrument": ["US0378331005", "US0378331005", "bad-isin"]},
            "expect_column_values_to_match_regex",
            "instrument",
            ["bad-isin"],
        ),
        (
            {"account": ["A1", "A1", "A1"], "instrument": ["US0378331005"] * 3},
            "expect_compound_columns_to_be_unique",
            None,
            None,
        ),
    ],
    ids=["null-key", "unknown-enum", "out-of-range", "bad-pattern", "duplicate-key"],
)
def test_failing_data_never_reaches_main(domain, change, expectation, column, sample):
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_trades(domain, GOOD, instance).success
        published = _table().current_snapshot().snapshot_id
        result = run_trades(domain, {**GOOD, **change}, instance)
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert not evaluation.passed
        failures = evaluation.metadata["failures_json"].value
        [failure] = [f for f in failures if f["expectation"] == expectation]
        assert failure["column"] == column
        if sample is not None:
            assert failure["sample"] == sample
        assert evaluation.metadata["published"].value is False
        table = _table()
        assert table.current_snapshot().snapshot_id == published
        assert list(table.refs()) == ["main"]
        assert sorted(table.scan().to_pandas()["weight"]) == [0.2, 0.3, 0.5]
        # the blocking check stopped the downstream product
        assert not any(
            e.asset_key == dg.AssetKey(["trades", "exposure"])
            for e in result.get_asset_materialization_events()
        )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "side"}, "missing contract column(s) ['side']"),
        ({**GOOD, "trader": ["x", "y", "z"]}, "column(s) ['trader'] not in the contract"),
        (
            {**GOOD, "weight": ["half", "fifth", "rest"]},
            "column 'weight' is string, the contract says double",
        ),
    ],
    ids=["missing-column", "extra-column", "wrong-type"],
)
def test_output_that_breaks_the_contract_schema_is_refused(domain, rows, message):
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_trades(domain, GOOD, instance).success
        before = _table().current_snapshot().snapshot_id
        result = run_trades(domain, rows, instance)
        assert not result.success
        error = result.get_step_failure_events()[0].event_specific_data.error
        assert message in (error.cause or error).message
        assert _table().current_snapshot().snapshot_id == before


def test_a_write_failing_midway_leaves_no_audit_branch(domain):
    import pyarrow as pa

    assets, defs = domain
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_trades(domain, GOOD, instance).success
        published = _table().current_snapshot().snapshot_id
        schema = pa.Table.from_pydict(GOOD).schema

        def batches():
            yield pa.RecordBatch.from_pydict(GOOD, schema=schema)
            raise OSError("upstream feed dropped")

        assets.ROWS["value"] = pa.RecordBatchReader.from_batches(schema, batches())
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        table = _table()
        assert list(table.refs()) == ["main"]
        assert table.current_snapshot().snapshot_id == published


def test_a_failed_first_publish_leaves_no_table(domain):
    """A product's first write branches from an empty genesis snapshot (Iceberg cannot branch a
    table without one): when its audit fails, the table is purged, so consumers find no table,
    not an empty published one; the next good run publishes as usual."""
    from pyiceberg.exceptions import NoSuchTableError

    warehouse = Path(get_settings().profile_home) / "warehouse" / "trades" / "positions"
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_trades(domain, {**GOOD, "side": ["long", "sideways", "long"]}, instance)
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.metadata["published"].value is False
        with pytest.raises(NoSuchTableError):
            _table()
        assert not [f for f in warehouse.rglob("*") if f.is_file()]  # its files went with it

        good = run_trades(domain, GOOD, instance)
        assert good.success
        table = _table()
        [evaluation] = good.get_asset_check_evaluations()
        assert list(table.refs()) == ["main"]
        assert table.current_snapshot().snapshot_id == evaluation.metadata["published_snapshot_id"].value
        assert len(table.scan().to_arrow()) == 3
