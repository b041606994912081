"""The `lake` profile end to end: the four domains into Iceberg on Ceph through the IO manager,
runs stored in PostgreSQL, every table queried by Trino, and the same numbers as the embedded run.

The mesh is published the way it runs in production: the runner materializes the locations that
read no other domain, and the daemon's cross-domain sensors run every consumer once its upstream
products are published (the trigger rules themselves are tested on the embedded profile in
``tests/automation``; here they run on the PostgreSQL instance and the lake's tables).
"""

import json
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.definitions import resources_for
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.maintenance import maintenance_job
from mesh_assets.lakehouse.trino import TrinoResource
from mesh_assets.orchestration import landing, runner
from mesh_assets.orchestration.automation import UPSTREAM_RUNS_TAG, sensor_name
from mesh_assets.orchestration.client import TERMINAL, RunOutcome
from mesh_assets.orchestration.services import DagsterServices
from mesh_assets.settings import (
    COMPUTE_LOG_PREFIX,
    MeshSettings,
    Profile,
    domain_role,
    domain_s3_user,
    get_settings,
)

pytestmark = [pytest.mark.lake, pytest.mark.slow]

SCORE = "portfolio_alignment.portfolio_temperature_score"


DOMAINS = ("benchmarks", "companies", "emissions", "portfolio_alignment")  # the sample's, provisioned
LANDED = "benchmarks"  # the domain whose raw files arrive through its landing bucket here
TICK = 5  # MESH_TRIGGER_INTERVAL of this module's daemon (seconds)
# ceilings, not expectations: sensors create runs within a few ticks; runs (dbt on Trino included)
# may take minutes on a loaded 2-core machine. Waits end at the event.
SETTLE_TIMEOUT = 1500
SENSOR_TAG = "dagster/sensor_name"


@dataclass
class LakeMesh:
    settings: MeshSettings
    instance: dg.DagsterInstance
    nodes: list[runner.AssetNode]
    runs: list[RunOutcome]  # every run of the module's session: the runner's, then the sensors'
    triggered: list[dict]  # the runs the daemon's sensors created
    drop: str  # the landing drop's id
    landed: list[runner.AssetNode]  # the products ingested from it
    pg_log_start: int  # the catalog database's log size before the session's runs
    server_envs: dict[str, dict[str, str]]  # each code server's environment, by location


def _code_server_envs(svc: DagsterServices) -> dict[str, dict[str, str]]:
    """The environment each running code server was started with (its runs are its children)."""
    state = json.loads(svc.state_file.read_text())
    envs = {}
    for name, record in state["locations"].items():
        raw = Path(f"/proc/{record['pid']}/environ").read_bytes().decode(errors="replace")
        envs[name] = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    return envs


def _foreign_upstream(nodes: list[runner.AssetNode]) -> dict[tuple[str, ...], set[str]]:
    """Per asset, the other locations among its ancestors (what must be published before it can run)."""
    by_path = {n.path: n for n in nodes}
    memo: dict[tuple[str, ...], set[str]] = {}

    def foreign(path: tuple[str, ...]) -> set[str]:
        if path not in memo:
            node = by_path[path]
            memo[path] = set()
            for dep in node.deps:
                if dep in by_path:
                    owner = by_path[dep].location
                    memo[path] |= foreign(dep) | ({owner} if owner != node.location else set())
        return memo[path]

    return {path: foreign(path) for path in by_path}


def _settle(svc, nodes: list[runner.AssetNode], since: float) -> list[dict]:
    """Wait until every asset has been published since ``since``, no run is in flight, and every
    cross-domain sensor has ticked twice after the last run ended without asking for another;
    the session's runs, oldest first."""
    client = svc.client
    foreign = _foreign_upstream(nodes)
    consumers = sorted({n.location for n in nodes if foreign[n.path]})
    deadline = time.monotonic() + SETTLE_TIMEOUT
    with svc.open_instance() as instance:
        while time.monotonic() < deadline:
            runs = [r for r in client.runs() if r["creationTime"] >= since]
            failed = [r for r in runs if r["status"] in ("FAILURE", "CANCELED")]
            assert not failed, [
                (r["runId"], r["tags"].get(SENSOR_TAG), client.run_errors(r["runId"])) for r in failed
            ]
            unpublished = [
                n.name
                for n in nodes
                if (event := instance.get_latest_materialization_event(dg.AssetKey(list(n.path)))) is None
                or event.timestamp < since
            ]
            if unpublished or any(r["status"] not in TERMINAL for r in runs):
                time.sleep(2)
                continue
            last_end = max(r["endTime"] for r in runs)
            quiet = all(
                len([t for t in client.sensor_ticks(loc, sensor_name(loc)) if t["timestamp"] > last_end]) >= 2
                for loc in consumers
            )
            if quiet and len([r for r in client.runs() if r["creationTime"] >= since]) == len(runs):
                return sorted(runs, key=lambda r: r["creationTime"])
            time.sleep(2)
    raise AssertionError(f"the mesh did not settle within {SETTLE_TIMEOUT}s: unpublished {unpublished}")


def _drop_raw_files(settings, domain: str) -> str:
    """Every file of the raw drop, as a new complete drop in the domain's landing bucket; its id."""
    client = landing.s3_client(settings)
    bucket = settings.landing_bucket(domain)
    landing.ensure_bucket(client, bucket)
    drop = f"lake-profile-{uuid.uuid4().hex[:8]}"
    for path in sorted(p for p in settings.raw_dir.rglob("*") if p.is_file()):
        key = f"{landing.DROPS}{drop}/{path.relative_to(settings.raw_dir).as_posix()}"
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    client.put_object(Bucket=bucket, Key=f"{landing.DROPS}{drop}/{landing.READY}", Body=b"")
    return drop


@pytest.fixture(scope="module")
def lake_mesh(lake_stack):
    """Published as in production: benchmarks' raw files arrive as a drop in its landing bucket
    (the daemon's landing sensor ingests it), the runner publishes the other products that read no
    other domain, and the daemon's cross-domain sensors publish the rest. A sensor refreshes the
    latest partition of a partitioned consumer; its history is a backfill, as an operator starts
    once (the runner, over the whole range), after which the mesh settles again."""
    settings = get_settings("lake").replace(trigger_interval=TICK)
    pg_log = _pg_log(settings)
    pg_log_start = pg_log.stat().st_size if pg_log.exists() else 0
    with DagsterServices(settings, webserver_port=0) as svc:
        since = time.time()
        nodes = runner.asset_nodes(svc.client)
        foreign = _foreign_upstream(nodes)
        landed = [n for n in nodes if n.location == LANDED and not n.partition_keys]
        sources = [n for n in nodes if not foreign[n.path] and n not in landed]
        drop = _drop_raw_files(settings, LANDED)
        # INFO: every step writes its log lines, which the S3 compute log manager uploads (tested below)
        launched = runner.materialize_all(svc.client, log_level="INFO", nodes=sources)
        session = _settle(svc, nodes, since)
        history = [n for n in nodes if foreign[n.path] and n.partition_keys]
        if history:
            launched += runner.materialize_all(svc.client, log_level="INFO", nodes=history)
            session = _settle(svc, nodes, since)
        by_runner = {r.run_id for r in launched}
        runs = launched + [
            svc.client.outcome(
                RunOutcome(r["runId"], r["location"], tuple(tuple(k) for k in r["assetSelection"] or [])), r
            )
            for r in session
            if r["runId"] not in by_runner
        ]
        triggered = [r for r in session if r["runId"] not in by_runner]
        # The tests below read what was published (instance, object store, Trino): a daemon ticking
        # every TICK seconds beside them (and beside the session's embedded demo, which may start
        # in this module) only takes CPU from them.
        server_envs = _code_server_envs(svc)
        svc.stop()
        with svc.open_instance() as instance:
            yield LakeMesh(
                settings, instance, nodes, runs, triggered, drop, landed, pg_log_start, server_envs
            )


def test_a_drop_in_the_landing_bucket_is_ingested_by_the_daemon(lake_mesh):
    """The landing sensor, ticked by the real daemon, ran the domain's ingestion once for the drop;
    its products record where they came from, and their consumers were triggered by that run."""
    bucket = lake_mesh.settings.landing_bucket(LANDED)
    ingested = [r for r in lake_mesh.triggered if r["tags"].get(landing.DROP_TAG) == lake_mesh.drop]
    assert len(ingested) == 1, ingested
    (run,) = ingested
    assert run["tags"][SENSOR_TAG] == f"{LANDED}__on_landing_drop"
    assert run["tags"]["dagster/run_key"] == f"landing:{lake_mesh.drop}"
    for node in lake_mesh.landed:
        event = lake_mesh.instance.get_latest_materialization_event(dg.AssetKey(list(node.path)))
        assert event.run_id == run["runId"]
        metadata = event.asset_materialization.metadata
        assert metadata["source/drop"].value == f"s3://{bucket}/drops/{lake_mesh.drop}/"
    consumers = [r for r in lake_mesh.triggered if run["runId"] in r["tags"].get(UPSTREAM_RUNS_TAG, "")]
    assert consumers, "no consumer was triggered by the ingested drop"


def test_the_daemon_publishes_every_product_that_reads_another_domain(lake_mesh):
    """Every product downstream of another domain was published by its location's sensor, in a run
    tagged with the publications that caused it, after those publications."""
    instance, nodes, runs, triggered = (
        lake_mesh.instance,
        lake_mesh.nodes,
        lake_mesh.runs,
        lake_mesh.triggered,
    )
    foreign = _foreign_upstream(nodes)
    by_id = {r.run_id: r for r in runs}
    assert {r["location"] for r in triggered} >= {"companies", "portfolio_alignment"}
    for node in nodes:
        if not foreign[node.path]:
            continue
        published_by = [r for r in triggered if node.path in {tuple(k) for k in r["assetSelection"] or []}]
        assert published_by, f"{node.name} was not published by a sensor's run"
        for run in published_by:
            assert run["tags"][SENSOR_TAG] == sensor_name(node.location)
            causes = set(filter(None, run["tags"].get(UPSTREAM_RUNS_TAG, "").split(", ")))
            assert causes <= set(by_id), (node.name, causes)
            for cause in causes:
                ended = instance.get_run_stats(cause).end_time
                assert ended is not None and run["creationTime"] >= ended, (node.name, cause)


def test_every_domain_materializes_into_the_lake(lake_mesh):
    settings, instance, nodes, runs = lake_mesh.settings, lake_mesh.instance, lake_mesh.nodes, lake_mesh.runs
    assert all(r.succeeded for r in runs)
    assert {"benchmarks", "companies", "emissions", "portfolio_alignment"} <= {r.location for r in runs}
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


def _pg_log(settings: MeshSettings):
    return settings.services_dir / "postgres" / "log" / "postgres.log"


def test_each_domains_runs_use_its_own_catalog_role(lake_mesh):
    """The lake hands each domain's code location its own credentials: its runs connect to the
    catalog database as mesh_<domain> (whose writes the database confines to its namespace,
    tests/lake/test_lake_principals.py), which the server's connection log records."""
    with _pg_log(lake_mesh.settings).open("rb") as handle:
        handle.seek(lake_mesh.pg_log_start)
        log = handle.read().decode(errors="replace")
    db = lake_mesh.settings.pg_catalog_db
    for domain in DOMAINS:
        assert f"connection authorized: user={domain_role(domain)} database={db}" in log, domain


def test_each_domains_code_server_holds_its_own_credentials_only(lake_mesh):
    """A domain's code server (and so its runs) was handed its own S3 keys and the Dagster
    instance's role, and no secret of the platform's: not the catalog owner's password, not the
    platform's S3 keys (whose bucket policy allows everything)."""
    settings = lake_mesh.settings
    platform = [settings.secret(name) for name in ("pg_password", "s3_access_key", "s3_secret_key")]
    for domain in DOMAINS:
        env = lake_mesh.server_envs[domain]
        own = settings.for_domain(domain).s3_credentials()
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == own, domain
        assert not [k for k, v in env.items() if any(secret in v for secret in platform)], domain
        assert f"://{settings.pg_dagster_user}:" in env["MESH_DAGSTER_PG_URL"], domain


def test_every_runs_step_logs_are_in_the_object_store(lake_mesh, s3):
    """Run logs live in the lake's bucket (S3ComputeLogManager on the Ceph gateway), not on one disk,
    written by the domain's own gateway user (its runs hold no other keys)."""
    settings, runs = lake_mesh.settings, lake_mesh.runs
    for run in runs:
        listing = s3.list_objects_v2(
            Bucket=settings.s3_bucket, Prefix=f"{COMPUTE_LOG_PREFIX}/storage/{run.run_id}/"
        )
        keys = [o["Key"] for o in listing.get("Contents", [])]
        assert any(k.endswith(".err") for k in keys), (run.run_id, keys)
        if run.location in DOMAINS:
            owners = {s3.get_object_acl(Bucket=settings.s3_bucket, Key=k)["Owner"]["ID"] for k in keys}
            assert owners == {domain_s3_user(run.location)}, (run.run_id, owners)
        text = b"".join(
            s3.get_object(Bucket=settings.s3_bucket, Key=k)["Body"].read() for k in keys if k.endswith(".err")
        ).decode()
        assert run.run_id in text or "STEP_SUCCESS" in text or "Finished execution of step" in text, text[
            :2000
        ]


def test_trino_reads_every_table_with_the_published_row_counts(lake_mesh, trino_sql):
    instance, nodes = lake_mesh.instance, lake_mesh.nodes
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
