"""End to end: load workspace.yaml (four code locations, each its own gRPC process), materialize
every domain through a persistent Dagster instance in dependency order, then check what landed."""

import re
import subprocess

import dagster as dg
import pandas as pd
import pytest
from dagster._core.instance import DagsterInstance, InstanceRef
from dagster._core.storage.dagster_run import DagsterRunStatus

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.orchestration.instance import prepare_dagster_home
from mesh_assets.orchestration.runner import MeshWorkspace
from mesh_assets.settings import REPO_ROOT, get_settings

WORKSPACE = REPO_ROOT / "workspace.yaml"
DOMAINS = ["benchmarks", "companies", "emissions", "portfolio_alignment"]

DBT_MODELS = {
    dg.AssetKey(["emissions", "company_emission_intensity"]),
    dg.AssetKey(["emissions", "sector_emissions_yearly"]),
    dg.AssetKey(["portfolio_alignment", "portfolio_temperature_score"]),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """The whole mesh materialized once into a fresh local profile."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MESH_HOME", str(tmp_path_factory.mktemp("mesh")))
    mp.setenv("MESH_PROFILE", "local")
    prepare_dagster_home(get_settings())
    with dg.DagsterInstance.get() as instance, MeshWorkspace(WORKSPACE, instance) as mesh:
        nodes = mesh.asset_nodes()
        runs = mesh.materialize_all()
        yield instance, mesh, nodes, runs
    mp.undo()


def test_each_domain_is_its_own_code_location(materialized):
    _, mesh, nodes, _ = materialized
    assert mesh.location_names == DOMAINS
    by_location = {loc: sorted(n.key.path[-1] for n in nodes if n.location == loc) for loc in DOMAINS}
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
    _, mesh, nodes, _ = materialized
    deps = {n.key.to_user_string(): {d.to_user_string() for d in n.deps} for n in nodes}
    assert deps["companies/company_master"] == {"benchmarks/country_regions"}
    assert {
        "companies/company_master",
        "emissions/reported_emissions",
        "emissions/production",
        "emissions/company_targets",
        "benchmarks/intensity_pathways",
    } <= deps["portfolio_alignment/company_temperature_scores"]
    # emissions' dbt models read companies.company_master: emissions runs after companies
    assert mesh.location_layers(nodes) == [
        ["benchmarks"],
        ["companies"],
        ["emissions"],
        ["portfolio_alignment"],
    ]


def test_every_run_succeeded_and_is_recorded_against_its_code_location(materialized):
    instance, _, _, runs = materialized
    assert runs and all(r.status is DagsterRunStatus.SUCCESS for r in runs)
    for launched in runs:
        run = instance.get_run_by_id(launched.run_id)
        assert run.remote_job_origin.location_name == launched.location
    partitioned = [r for r in runs if r.partition_range]
    assert sorted(r.assets[0].path for r in partitioned) == [
        ["benchmarks", "intensity_pathways"],
        ["emissions", "sector_emissions_yearly"],
    ]


def test_every_table_matches_its_latest_materialization(materialized):
    instance, _, nodes, _ = materialized
    catalog = load_catalog(get_settings())
    for node in nodes:
        event = instance.get_latest_materialization_event(node.key)
        assert event is not None, node.key
        metadata = event.asset_materialization.metadata
        table = catalog.load_table(".".join(node.key.path))
        assert metadata["iceberg/snapshot_id"].value == table.current_snapshot().snapshot_id
        assert metadata["iceberg/table_row_count"].value == len(table.scan().to_arrow()) > 0
        if node.key not in DBT_MODELS:  # Python assets report what cleaning set aside
            assert "mesh/rejected_rows" in metadata


def test_portfolio_score_is_published(materialized):
    catalog = load_catalog(get_settings())
    score = catalog.load_table("portfolio_alignment.portfolio_temperature_score").scan().to_pandas()
    assert len(score) >= 1
    numeric = score.select_dtypes("number")
    temperature = [c for c in numeric.columns if "temperature" in c or "score" in c]
    assert temperature, score.columns
    assert 1.2 <= float(score[temperature[0]].iloc[0]) <= 4.5


def test_dbt_models_pass_their_tests_and_contract_before_they_are_published(materialized):
    instance, _, _, _ = materialized
    for key in DBT_MODELS:
        table = load_catalog(get_settings()).load_table(".".join(key.path))
        assert table.current_snapshot().summary["mesh.dbt.model"] == f"model.{key.path[0]}.{key.path[1]}"
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


def test_dbt_portfolio_score_equals_the_python_reference(materialized):
    from domains.portfolio_alignment import transforms

    catalog = load_catalog(get_settings())

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


def test_mesh_demo_command_prints_tables_and_score(tmp_path):
    env = {"MESH_HOME": str(tmp_path / "demo"), "MESH_PROFILE": "local", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "order: benchmarks  ->  companies  ->  emissions  ->  portfolio_alignment" in out
    for table in [
        "benchmarks.intensity_pathways",
        "companies.company_master",
        "portfolio_alignment.portfolio_temperature_score",
    ]:
        assert table in out
    assert "portfolio temperature score (OECM_1_5C, scope S1S2;" in out
    assert re.search(r"WATS +[1-4]\.[0-9]{2} °C", out), out[-800:]
    # The runs are in the persistent instance the UI reads.
    home = tmp_path / "demo" / "local" / "dagster"
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        runs = instance.get_runs()
        assert len(runs) == 6 and all(r.status is DagsterRunStatus.SUCCESS for r in runs)
        assert {r.remote_job_origin.location_name for r in runs} == set(DOMAINS)


def test_dbt_docs_describe_the_staged_models(materialized):
    import json

    from mesh_assets.dbt.prepare import generate_docs

    site = generate_docs("portfolio_alignment", get_settings())
    assert site.is_file()
    catalog = json.loads((site.parent / "catalog.json").read_text())
    [node] = [n for uid, n in catalog["nodes"].items() if uid.endswith(".portfolio_temperature_score")]
    assert {"method", "temperature_score_c", "coverage_value_share"} <= {c.lower() for c in node["columns"]}
    manifest = json.loads((site.parent / "manifest.json").read_text())
    model = manifest["nodes"]["model.portfolio_alignment.portfolio_temperature_score"]
    assert "weighting method" in model["description"]
