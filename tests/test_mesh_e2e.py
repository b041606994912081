"""End to end: load workspace.yaml (four code locations, each its own gRPC process), materialize
every domain through a persistent Dagster instance in dependency order, then check what landed."""

import re

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.orchestration import runner
from mesh_assets.orchestration.instance import open_instance
from mesh_assets.orchestration.services import DagsterServices
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import locations

WORKSPACE = REPO_ROOT / "workspace.yaml"
# the sample's domains; a domain added with `mesh new-domain` joins the workspace beside them
DOMAINS = ["benchmarks", "companies", "emissions", "portfolio_alignment"]

DBT_MODELS = {
    dg.AssetKey(["emissions", "company_emission_intensity"]),
    dg.AssetKey(["emissions", "sector_emissions_yearly"]),
    dg.AssetKey(["portfolio_alignment", "portfolio_temperature_score"]),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(demo) -> MeshSettings:
    """The local profile of the session's `mesh demo` run (the whole mesh, materialized once)."""
    return MeshSettings.from_env("local").replace(home=demo.home)


@pytest.fixture(scope="module")
def materialized(settings):
    """The services a user opens after `mesh demo` (`mesh ui` without the daemon) on what it published."""
    with DagsterServices(settings, daemon=False, webserver_port=0) as svc:
        nodes = runner.asset_nodes(svc.client)
        with svc.open_instance() as instance:
            yield instance, svc, nodes


def sample_layers(layers: list[list[str]]) -> list[list[str]]:
    """The run order restricted to the sample's domains (another domain may share their layers)."""
    return [kept for layer in layers if (kept := [name for name in layer if name in DOMAINS])]


def key(node: runner.AssetNode) -> dg.AssetKey:
    return dg.AssetKey(list(node.path))


def test_each_domain_is_its_own_code_location(materialized):
    _, svc, nodes = materialized
    # every domain its own location, beside the platform's own (the catalog export)
    assert {*DOMAINS, "mesh_lineage"} <= set(svc.location_names)
    assert set(svc.client.locations()) == set(svc.location_names)
    by_location = {loc: sorted(n.path[-1] for n in nodes if n.location == loc) for loc in DOMAINS}
    assert by_location == {
        "benchmarks": ["country_regions", "intensity_pathways", "production_pathways"],
        "companies": ["company_master"],
        "emissions": [
            "company_emission_intensity",
            "company_targets",
            "emission_intensities",
            "production",
            "reported_emissions",
            "sector_emissions_yearly",
        ],
        "portfolio_alignment": [
            "company_temperature_scores",
            "portfolio_holdings",
            "portfolio_temperature_score",
        ],
    }


def test_lineage_crosses_code_locations_and_sets_the_order(materialized):
    _, _, nodes = materialized
    deps = {n.name: {"/".join(d) for d in n.deps} for n in nodes}
    assert deps["companies/company_master"] == {"benchmarks/country_regions"}
    assert {
        "companies/company_master",
        "emissions/reported_emissions",
        "emissions/production",
        "emissions/company_targets",
        "benchmarks/intensity_pathways",
    } <= deps["portfolio_alignment/company_temperature_scores"]
    # emissions' dbt models read companies.company_master: emissions runs after companies
    assert sample_layers(runner.location_layers(nodes)) == [
        ["benchmarks"],
        ["companies"],
        ["emissions"],
        ["portfolio_alignment"],
    ]


def test_every_run_succeeded_and_is_recorded_against_its_code_location(materialized):
    instance, _, _ = materialized
    runs = instance.get_runs()
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    runs = [r for r in runs if r.remote_job_origin.location_name in DOMAINS]
    assert len(runs) == 6
    # one run per domain, and one more for each partitioned product (its whole partition range)
    assert sorted(r.remote_job_origin.location_name for r in runs) == sorted(
        [*DOMAINS, "benchmarks", "emissions"]
    )
    partitioned = [r for r in runs if "dagster/asset_partition_range_start" in r.tags]
    assert sorted(list(k.path) for r in partitioned for k in r.asset_selection or ()) == [
        ["benchmarks", "intensity_pathways"],
        ["emissions", "sector_emissions_yearly"],
    ]
    for run in partitioned:
        location = run.remote_job_origin.location_name
        assert all(k.path[0] == location for k in run.asset_selection or ()), run.run_id


def test_every_table_matches_its_latest_materialization(materialized, settings):
    instance, _, nodes = materialized
    catalog = load_catalog(settings)
    for node in nodes:
        event = instance.get_latest_materialization_event(key(node))
        assert event is not None, node.path
        metadata = event.asset_materialization.metadata
        table = catalog.load_table(".".join(node.path))
        assert metadata["iceberg/snapshot_id"].value == table.current_snapshot().snapshot_id
        assert metadata["iceberg/table_row_count"].value == len(table.scan().to_arrow()) > 0
        if key(node) not in DBT_MODELS:  # Python assets report what cleaning set aside
            assert "mesh/rejected_rows" in metadata


def test_portfolio_score_is_published(materialized, settings):
    catalog = load_catalog(settings)
    score = catalog.load_table("portfolio_alignment.portfolio_temperature_score").scan().to_pandas()
    assert len(score) >= 1
    numeric = score.select_dtypes("number")
    temperature = [c for c in numeric.columns if "temperature" in c or "score" in c]
    assert temperature, score.columns
    assert 1.2 <= float(score[temperature[0]].iloc[0]) <= 4.5


def test_dbt_models_pass_their_tests_and_contract_before_they_are_published(materialized, settings):
    instance, _, _ = materialized
    for model in DBT_MODELS:
        table = load_catalog(settings).load_table(".".join(model.path))
        assert table.current_snapshot().summary["mesh.dbt.model"] == f"model.{model.path[0]}.{model.path[1]}"
    not_null = dg.AssetCheckKey(
        dg.AssetKey(["emissions", "company_emission_intensity"]),
        "unique_company_emission_intensity_company_year",
    )
    [record] = instance.event_log_storage.get_asset_check_execution_history(not_null, limit=1)
    assert record.status.value == "SUCCEEDED"
    score = dg.AssetKey(["portfolio_alignment", "portfolio_temperature_score"])
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(score, "contract"), limit=1
    )
    assert records and records[0].status.value == "SUCCEEDED"


def test_dbt_portfolio_score_equals_the_python_reference(materialized, settings):
    from domains.portfolio_alignment import transforms

    catalog = load_catalog(settings)

    def read(name):
        return catalog.load_table(name).scan().to_pandas()

    expected = transforms.portfolio_temperature_score(
        read("portfolio_alignment.portfolio_holdings"),
        read("portfolio_alignment.company_temperature_scores"),
        read("companies.company_master"),
    ).data
    actual = read("portfolio_alignment.portfolio_temperature_score")
    keys = ["benchmark_id", "scope", "method"]
    expected = expected.sort_values(keys).reset_index(drop=True)
    actual = actual[list(expected.columns)].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, rtol=1e-9)


def test_mesh_demo_command_prints_tables_and_score(demo):
    out = demo.stdout
    (order,) = [line for line in out.splitlines() if line.startswith("order: ")]
    layers = [layer.split(" + ") for layer in order.removeprefix("order: ").split("  ->  ")]
    assert sample_layers(layers) == [["benchmarks"], ["companies"], ["emissions"], ["portfolio_alignment"]]
    for table in [
        "benchmarks.intensity_pathways",
        "companies.company_master",
        "portfolio_alignment.portfolio_temperature_score",
    ]:
        assert table in out
    # the headline the portfolio score's contract names: every aggregation by scope, with coverage
    assert (
        "portfolio_alignment.portfolio_temperature_score (temperature_score_c / coverage_value_share" in out
    )
    for method in ("WATS", "TETS", "MOTS", "EOTS", "ECOTS", "AOTS", "ROTS"):
        assert re.search(rf"\b{method}\s+[0-9]\.[0-9]{{2}} / [01]\.[0-9]{{2}}\b", out), (method, out[-2500:])
    # the legacy Airflow DAG's product is the DAG's to run; what reads it waits for its publication
    (left_out,) = [line for line in out.splitlines() if line.startswith("not run: ")]
    assert "companies/vendor_market_data (runs in the Airflow DAG companies_vendor_market_data)" in left_out
    assert (
        "companies/market_data (waits for the first publication of companies/vendor_market_data)" in left_out
    )
    # one screen for the sample's mesh: a line per run, the tables and the headline; no dbt or
    # service log lines. A domain added since adds its own run and table lines, nothing else.
    lines = out.splitlines()
    workspace = locations(REPO_ROOT / "workspace.yaml")
    added = {loc.domain for loc in workspace if loc.module_name.startswith("domains.")} - set(DOMAINS)
    theirs = [line for line in lines if line.strip().split(" ", 1)[0].split(".", 1)[0] in added]
    assert len(lines) - len(theirs) < 40, out
    assert "keyring" not in demo.stderr + out and "\x1b[" not in out
    # the runs are in the persistent instance the UI reads
    with open_instance(MeshSettings.from_env("local").replace(home=demo.home)) as instance:
        runs = instance.get_runs()
        assert all(r.status.value == "SUCCESS" for r in runs)
        assert {r.remote_job_origin.location_name for r in runs} >= set(DOMAINS)
        assert len([r for r in runs if r.remote_job_origin.location_name in DOMAINS]) == 6


def test_dbt_docs_describe_the_staged_models(materialized, settings):
    import json

    from mesh_assets.dbt.prepare import generate_docs

    site = generate_docs("portfolio_alignment", settings)
    assert site.is_file()
    catalog = json.loads((site.parent / "catalog.json").read_text())
    [node] = [n for uid, n in catalog["nodes"].items() if uid.endswith(".portfolio_temperature_score")]
    assert {"method", "temperature_score_c", "coverage_value_share"} <= {c.lower() for c in node["columns"]}
    manifest = json.loads((site.parent / "manifest.json").read_text())
    model = manifest["nodes"]["model.portfolio_alignment.portfolio_temperature_score"]
    assert "weighting method" in model["description"]
