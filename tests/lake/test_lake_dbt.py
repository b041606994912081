"""dbt on the lake: dbt-trino builds into the domain's Iceberg staging schema through Trino, the
platform publishes to the product table; incremental windows and failing tests behave as in `local`."""

import dagster as dg
import pandas as pd
import pytest
from dbt_platform.dbt_toy import SITES, events, write_project, write_source

from mesh_assets.definitions import build_domain_definitions
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import get_settings

pytestmark = [pytest.mark.lake, pytest.mark.slow]

DAILY = dg.AssetKey(["toy", "daily_totals"])
TOTALS = dg.AssetKey(["toy", "site_totals"])
SCHEMAS = ("toy", "refdata", "toy_staging")


def _drop_all(trino_sql):
    for schema in SCHEMAS:
        if [schema] not in trino_sql("SHOW SCHEMAS"):
            continue
        for (table,) in trino_sql(f'SHOW TABLES FROM "{schema}"'):
            trino_sql(f'DROP TABLE IF EXISTS "{schema}"."{table}"')
        trino_sql(f'DROP SCHEMA IF EXISTS "{schema}"')


@pytest.fixture
def lake_toy(lake_stack, trino_sql, tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_PROFILE", "lake")
    _drop_all(trino_sql)
    project = write_project(tmp_path / "toy")
    yield build_domain_definitions("toy", dbt_project_dir=project, settings=get_settings("lake"))
    _drop_all(trino_sql)


def _materialize(defs, key, partition_key=None, raise_on_error=True):
    assets_def = defs.get_repository_def().asset_graph.get(key).assets_def
    return dg.materialize(
        [assets_def],
        selection=[key],  # the location bound its resources (lake settings)
        partition_key=partition_key,
        raise_on_error=raise_on_error,
    )


def test_incremental_model_on_trino_processes_only_the_new_window(lake_toy, trino_sql):
    write_source("refdata.sites", SITES)
    write_source("toy.events", events(["2021-03-01", "2021-03-02", "2021-03-02"]))
    first = _materialize(lake_toy, DAILY, partition_key="2021")
    [mat] = first.asset_materializations_for_node("toy_dbt_toy_yearly_2020")
    assert mat.metadata["dagster/row_count"].value == 2
    # dbt-trino staged the model as an Iceberg table of the staging schema
    assert trino_sql('SELECT count(*) FROM toy_staging."daily_totals"') == [[2]]

    write_source("toy.events", events(["2022-01-05", "2022-01-06", "2022-01-07"]), mode="append")
    second = _materialize(lake_toy, DAILY, partition_key="2022")
    [mat] = second.asset_materializations_for_node("toy_dbt_toy_yearly_2020")
    assert mat.metadata["dbt/rows_affected"].value == 3  # Trino's count: the window's rows only
    assert mat.metadata["dbt/window"].value == "[2022-01-01, 2023-01-01)"
    table = load_catalog(get_settings("lake")).load_table("toy.daily_totals")
    summary = table.current_snapshot().summary.additional_properties
    assert int(summary["added-records"]) == 3 and int(summary.get("deleted-records") or 0) == 0
    rows = trino_sql("SELECT cast(day AS varchar), n_events FROM toy.daily_totals ORDER BY day")
    assert rows == [
        ["2021-03-01", 1],
        ["2021-03-02", 2],
        ["2022-01-05", 1],
        ["2022-01-06", 1],
        ["2022-01-07", 1],
    ]


def test_a_failing_dbt_test_on_trino_publishes_nothing(lake_toy, trino_sql):
    write_source("refdata.sites", SITES)
    write_source("toy.events", events(["2021-01-01"], "s1"))
    assert _materialize(lake_toy, TOTALS).success
    before = load_catalog(get_settings("lake")).load_table("toy.site_totals").current_snapshot().snapshot_id
    write_source("refdata.sites", pd.DataFrame({"site_id": ["s1", "s3"], "site_name": ["north", "west"]}))
    write_source("toy.events", events(["2021-01-01"], "s3"), mode="append")
    result = _materialize(lake_toy, TOTALS, raise_on_error=False)
    assert not result.success
    verdicts = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert verdicts["accepted_values_site_totals_site_name__north__south__east"] is False
    after = load_catalog(get_settings("lake")).load_table("toy.site_totals").current_snapshot().snapshot_id
    assert after == before
    assert trino_sql("SELECT site_id FROM toy.site_totals") == [["s1"]]
