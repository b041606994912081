"""The platform's dbt path on a toy project: models become assets of their domain, sources map to
other domains' keys, dbt tests become checks that gate publication, partitioned incremental models
process their window only, and a code location never imports dbt when it loads."""

import json
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest
from dbt_toy import SITES, events, write_project, write_source

from mesh_assets.dbt import DbtNotPreparedError
from mesh_assets.definitions import build_domain_definitions
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import REPO_ROOT, get_settings

TOTALS = dg.AssetKey(["toy", "site_totals"])
DAILY = dg.AssetKey(["toy", "daily_totals"])


def _defs(project) -> dg.Definitions:
    return build_domain_definitions("toy", dbt_project_dir=project)


def _materialize(defs: dg.Definitions, keys, partition_key=None, raise_on_error=True):
    graph = defs.get_repository_def().asset_graph
    assets = [graph.get(k).assets_def for k in keys]
    # the assets carry the resources their code location bound (the settings of this test's MESH_HOME)
    return dg.materialize(
        list({id(a): a for a in assets}.values()),
        selection=list(keys),
        partition_key=partition_key,
        raise_on_error=raise_on_error,
    )


def _table(name: str):
    return load_catalog(get_settings()).load_table(name)


def test_models_are_assets_with_cross_domain_sources_and_test_checks(toy_project):
    defs = _defs(toy_project)
    graph = defs.get_repository_def().asset_graph
    assert graph.get(TOTALS).parent_keys == {
        dg.AssetKey(["toy", "events"]),
        dg.AssetKey(["refdata", "sites"]),
    }
    assert graph.get(TOTALS).group_name == "toy"
    # the other domain's table is an external asset of this location: lineage crosses locations
    assert not graph.get(dg.AssetKey(["refdata", "sites"])).is_materializable
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == TOTALS}
    assert checks == {
        "unique_site_totals_site_id",
        "not_null_site_totals_site_id",
        "relationships_site_totals_site_id__site_id__source_refdata_sites_",
        "accepted_values_site_totals_site_name__north__south__east",
    }
    assert isinstance(graph.get(DAILY).partitions_def, dg.TimeWindowPartitionsDefinition)
    assert graph.get(TOTALS).partitions_def is None


def test_a_model_is_published_to_iceberg_after_its_tests_pass(toy_project):
    write_source("toy.events", events(["2021-01-01", "2021-01-02"], "s1"))
    write_source("refdata.sites", SITES)
    result = _materialize(_defs(toy_project), [TOTALS])
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)
    [mat] = result.asset_materializations_for_node("toy_dbt_toy")
    table = _table("toy.site_totals")
    assert mat.metadata["iceberg/snapshot_id"].value == table.current_snapshot().snapshot_id
    assert mat.metadata["dagster/row_count"].value == 1
    rows = table.scan().to_pandas().to_dict("records")
    assert rows == [{"site_id": "s1", "site_name": "north", "n_events": 2, "total_amount": 2.0}]
    assert table.current_snapshot().summary["mesh.dbt.model"] == "model.toy.site_totals"


def test_a_failing_test_publishes_nothing(toy_project):
    write_source("refdata.sites", SITES)
    write_source("toy.events", events(["2021-01-01"], "s1"))
    assert _materialize(_defs(toy_project), [TOTALS]).success
    before = _table("toy.site_totals").current_snapshot().snapshot_id
    # a new site with a name outside the accepted values breaks one test
    write_source("refdata.sites", pd.DataFrame({"site_id": ["s1", "s3"], "site_name": ["north", "west"]}))
    write_source("toy.events", events(["2021-01-01"], "s3"), mode="append")
    result = _materialize(_defs(toy_project), [TOTALS], raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("toy_dbt_toy").error.message
    assert "site_totals (failed dbt tests" in failure and "not published" in failure
    verdicts = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert verdicts["accepted_values_site_totals_site_name__north__south__east"] is False
    assert verdicts["unique_site_totals_site_id"] is True
    assert _table("toy.site_totals").current_snapshot().snapshot_id == before
    assert result.asset_materializations_for_node("toy_dbt_toy") == []


def test_a_sql_error_is_reported_and_publishes_nothing(tmp_path, mesh_home):
    project = write_project(
        tmp_path / "broken",
        {"models/marts/site_totals.sql": "select site_id, no_such_column from {{ source('toy', 'events') }}"},
    )
    write_source("toy.events", events(["2021-01-01"]))
    write_source("refdata.sites", SITES)
    result = _materialize(_defs(project), [TOTALS], raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("toy_dbt_toy").error.message
    assert "site_totals (error:" in message and "no_such_column" in message
    assert not load_catalog(get_settings()).table_exists("toy.site_totals")


def test_incremental_model_second_run_processes_only_the_new_data(toy_project):
    write_source("refdata.sites", SITES)
    write_source("toy.events", events(["2021-03-01", "2021-03-02", "2021-03-02"]))
    defs = _defs(toy_project)
    first = _materialize(defs, [DAILY], partition_key="2021")
    [mat] = first.asset_materializations_for_node("toy_dbt_toy_yearly_2020")
    assert mat.metadata["dagster/row_count"].value == 2
    files_2021 = {f.file.file_path for f in _table("toy.daily_totals").scan().plan_files()}

    # new data arrives for 2022 (and nothing changes in 2021)
    write_source("toy.events", events(["2022-01-05", "2022-01-06", "2022-01-07"]), mode="append")
    second = _materialize(defs, [DAILY], partition_key="2022")
    [mat] = second.asset_materializations_for_node("toy_dbt_toy_yearly_2020")
    assert mat.metadata["dbt/window"].value == "[2022-01-01, 2023-01-01)"  # dbt's vars: the new year only
    assert mat.metadata["dagster/row_count"].value == 3
    table = _table("toy.daily_totals")
    summary = table.current_snapshot().summary.additional_properties
    assert int(summary["added-records"]) == 3
    assert int(summary.get("deleted-records") or 0) == 0
    assert files_2021 <= {f.file.file_path for f in table.scan().plan_files()}  # 2021 untouched
    frame = table.scan().to_pandas().sort_values("day")
    assert frame["n_events"].tolist() == [1, 2, 1, 1, 1]

    # re-running a window replaces it, and only it
    write_source("toy.events", events(["2022-01-05"]), mode="append")
    third = _materialize(defs, [DAILY], partition_key="2022")
    [mat] = third.asset_materializations_for_node("toy_dbt_toy_yearly_2020")
    assert mat.metadata["dagster/row_count"].value == 3
    frame = _table("toy.daily_totals").scan().to_pandas().sort_values("day")
    assert frame["n_events"].tolist() == [1, 2, 2, 1, 1]


def test_a_location_without_a_prepared_manifest_says_how_to_build_it(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: x\nprofile: mesh\n")
    with pytest.raises(DbtNotPreparedError, match="mesh dbt prepare"):
        build_domain_definitions("toy", dbt_project_dir=tmp_path)


@pytest.mark.parametrize("domain", ["emissions", "portfolio_alignment"])
def test_loading_a_location_never_imports_dbt(domain):
    code = (
        f"import sys, json; import domains.{domain}.definitions as d; d.defs().get_repository_def(); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('dbt', 'dagster_dbt', 'duckdb'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
