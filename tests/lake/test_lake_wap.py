"""Write-audit-publish on the lake: the audit branch lives in the PostgreSQL catalog and on Ceph;
Trino sees main only, before and after a failed audit."""

import sys
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from contract_domain import GOOD, build_trades_domain, run_trades

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import get_settings

pytestmark = [pytest.mark.lake]


@pytest.fixture
def lake_domain(lake_stack, tmp_path, monkeypatch, trino_sql):
    monkeypatch.setenv("MESH_PROFILE", "lake")
    trino_sql("DROP TABLE IF EXISTS trades.exposure")
    trino_sql("DROP TABLE IF EXISTS trades.positions")
    yield build_trades_domain(tmp_path / "pkgs")
    trino_sql("DROP TABLE IF EXISTS trades.exposure")
    trino_sql("DROP TABLE IF EXISTS trades.positions")


def test_audit_then_publish_and_refuse_on_the_lake(lake_domain, trino_sql):
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_trades(lake_domain, GOOD, instance).success
        assert trino_sql("SELECT count(*) FROM trades.positions") == [[3]]
        table = load_catalog(get_settings()).load_table("trades.positions")
        published = table.current_snapshot().snapshot_id
        assert table.location().startswith("s3://")

        bad = {**GOOD, "weight": [0.5, 1.7, 0.3]}
        result = run_trades(lake_domain, bad, instance)
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert not evaluation.passed
        [failure] = evaluation.metadata["failures_json"].value
        assert (failure["expectation"], failure["column"], failure["sample"]) == (
            "expect_column_values_to_be_between",
            "weight",
            [1.7],
        )
        table = table.refresh()
        assert table.current_snapshot().snapshot_id == published
        assert list(table.refs()) == ["main"]
        assert trino_sql("SELECT max(weight) FROM trades.positions") == [[0.5]]
        assert trino_sql('SELECT count(*) FROM trades."positions$refs"') == [[1]]


def test_a_failed_first_publish_leaves_no_table_on_the_lake(lake_domain, trino_sql, s3):
    """No table for Trino, no new file in the warehouse bucket: as before the run."""
    bucket = get_settings().s3_bucket

    def positions_objects() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        # files only: the empty "folder/" markers pyarrow's S3 filesystem makes hold no data
        keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
        return {k for k in keys if "positions" in k and not k.endswith("/")}

    before = positions_objects()
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_trades(lake_domain, {**GOOD, "weight": [0.5, 1.7, 0.3]}, instance)
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.metadata["published"].value is False
    assert ["positions"] not in trino_sql("SHOW TABLES FROM trades")
    assert positions_objects() <= before
