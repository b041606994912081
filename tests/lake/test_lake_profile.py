"""The `lake` profile end to end: the four domains into Iceberg on Ceph through the IO manager,
runs stored in PostgreSQL, every table queried by Trino, and the same numbers as the embedded run."""

import math

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.definitions import resources_for
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.maintenance import maintenance_job
from mesh_assets.lakehouse.trino import TrinoResource
from mesh_assets.orchestration import runner
from mesh_assets.orchestration.instance import COMPUTE_LOG_PREFIX
from mesh_assets.orchestration.services import DagsterServices
from mesh_assets.settings import MeshSettings, Profile, get_settings

pytestmark = [pytest.mark.lake, pytest.mark.slow]

SCORE = "portfolio_alignment.portfolio_temperature_score"


@pytest.fixture(scope="module")
def lake_mesh(lake_stack):
    settings = get_settings("lake")
    with DagsterServices(settings, daemon=False, webserver_port=0) as svc:
        nodes = runner.asset_nodes(svc.client)
        # INFO: every step writes its log lines, which the S3 compute log manager uploads (tested below)
        runs = runner.materialize_all(svc.client, log_level="INFO", nodes=nodes)
        with svc.open_instance() as instance:
            yield settings, instance, nodes, runs


def test_every_domain_materializes_into_the_lake(lake_mesh):
    settings, instance, nodes, runs = lake_mesh
    assert all(r.succeeded for r in runs)
    # one run per sample domain and one per partitioned product; a domain added later adds its own
    sample = ("benchmarks", "companies", "emissions", "portfolio_alignment")
    assert len([r for r in runs if r.location in sample]) == 6
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    for node in nodes:
        metadata = instance.get_latest_materialization_event(
            dg.AssetKey(list(node.path))
        ).asset_materialization.metadata
        assert metadata["dagster/uri"].value.startswith(f"s3://{settings.s3_bucket}/iceberg/")
        assert (
            metadata["iceberg/snapshot_id"].value
            == load_catalog(settings).load_table(".".join(node.path)).current_snapshot().snapshot_id
        )


def test_every_runs_step_logs_are_in_the_object_store(lake_mesh, s3):
    """Run logs live in the lake's bucket (S3ComputeLogManager on the Ceph gateway), not on one disk."""
    settings, _, _, runs = lake_mesh
    for run in runs:
        listing = s3.list_objects_v2(
            Bucket=settings.s3_bucket, Prefix=f"{COMPUTE_LOG_PREFIX}/storage/{run.run_id}/"
        )
        keys = [o["Key"] for o in listing.get("Contents", [])]
        assert any(k.endswith(".err") for k in keys), (run.run_id, keys)
        text = b"".join(
            s3.get_object(Bucket=settings.s3_bucket, Key=k)["Body"].read() for k in keys if k.endswith(".err")
        ).decode()
        assert run.run_id in text or "STEP_SUCCESS" in text or "Finished execution of step" in text, text[
            :2000
        ]


def test_trino_reads_every_table_with_the_published_row_counts(lake_mesh, trino_sql):
    _, instance, nodes, _ = lake_mesh
    for node in nodes:
        namespace, table = node.path
        expected = (
            instance.get_latest_materialization_event(dg.AssetKey(list(node.path)))
            .asset_materialization.metadata["iceberg/table_row_count"]
            .value
        )
        assert trino_sql(f'SELECT count(*) FROM "{namespace}"."{table}"') == [[expected]], node.path


@pytest.fixture(scope="module")
def local_catalog(demo):
    """The catalog of the same mesh run by `mesh demo` on the embedded default (the session's run)."""
    return load_catalog(MeshSettings.from_env(Profile.LOCAL).replace(home=demo.home))


def test_trino_portfolio_numbers_equal_the_embedded_run(lake_mesh, trino_sql, local_catalog):
    local = local_catalog.load_table(SCORE).scan().to_pandas()
    lake = trino_sql(
        f"SELECT scope, method, temperature_score_c, coverage_value_share, n_holdings FROM {SCORE}"
    )
    lake_by_method = {(row[0], row[1]): row[2:] for row in lake}
    assert set(lake_by_method) == set(zip(local["scope"], local["method"], strict=True))
    assert {"WATS", "TETS", "MOTS", "EOTS", "ECOTS", "AOTS", "ROTS"} <= {m for _, m in lake_by_method}
    for row in local.itertuples():
        score, coverage, holdings = lake_by_method[(row.scope, row.method)]
        if pd.isna(row.temperature_score_c):  # an aggregation with no figure on this drop
            assert score is None, (row.scope, row.method)
            continue
        assert math.isclose(score, row.temperature_score_c, rel_tol=1e-12)
        assert math.isclose(coverage, row.coverage_value_share, rel_tol=1e-12)
        assert holdings == row.n_holdings


DBT_TABLES = {
    "emissions.company_emission_intensity": ["company_year"],
    "emissions.sector_emissions_yearly": ["sector", "year"],
    "portfolio_alignment.portfolio_temperature_score": ["benchmark_id", "scope", "method"],
}


def test_dbt_models_give_the_same_tables_on_trino_and_on_duckdb(lake_mesh, local_catalog):
    """The same dbt models, run by dbt-trino in `lake` and by dbt-duckdb in `local`, publish equal tables."""
    lake_catalog = load_catalog(get_settings("lake"))
    for name, keys in DBT_TABLES.items():
        lake = lake_catalog.load_table(name)
        assert lake.current_snapshot().summary["mesh.dbt.model"].startswith("model."), name
        lake_rows = lake.scan().to_pandas().sort_values(keys).reset_index(drop=True)
        local_rows = (
            local_catalog.load_table(name).scan().to_pandas().sort_values(keys).reset_index(drop=True)
        )
        assert len(lake_rows) == len(local_rows) > 0, name
        pd.testing.assert_frame_equal(
            lake_rows[list(local_rows.columns)], local_rows, check_dtype=False, rtol=1e-9, obj=name
        )


def test_an_asset_can_push_sql_down_to_trino(lake_mesh, trino_sql):
    @dg.asset(key_prefix="companies")
    def companies_per_sector(trino: TrinoResource) -> pd.DataFrame:
        return trino.query(
            "SELECT sector, count(*) AS companies FROM companies.company_master GROUP BY sector ORDER BY sector"
        )

    master = dg.AssetSpec(["companies", "company_master"])
    result = dg.materialize([master, companies_per_sector], resources=resources_for(get_settings("lake")))
    assert result.success
    expected = load_catalog(get_settings("lake")).load_table("companies.company_master").scan().to_pandas()
    expected = expected.groupby("sector").size().sort_index()
    rows = trino_sql("SELECT sector, companies FROM companies.companies_per_sector ORDER BY sector")
    assert rows == [[sector, int(n)] for sector, n in expected.items()]
    trino_sql("DROP TABLE companies.companies_per_sector")


def test_maintenance_job_runs_through_trino(lake_mesh, trino_sql):
    before = trino_sql('SELECT count(*) FROM emissions."production$snapshots"')[0][0]
    job = maintenance_job("emissions")
    config = {"snapshot_retention_hours": 0, "orphan_retention_hours": 0, "compact_min_files": 1}
    result = job.execute_in_process(
        resources=resources_for(get_settings("lake")),
        run_config={"ops": {"emissions_maintain_tables": {"config": config}}},
    )
    assert result.success
    assert trino_sql('SELECT count(*) FROM emissions."production$snapshots"')[0][0] == 1 <= before
    assert trino_sql('SELECT count(*) FROM emissions."production$files"')[0][0] == 1
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observed) == 6  # one per emissions table (4 Python assets, 2 dbt models)
