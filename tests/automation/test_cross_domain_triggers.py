"""Cross-domain triggers and SLAs, driven by the real daemon and webserver on the real workspace.

One module-scoped set of services on the embedded profile (SQLite instance and catalog in a tmp
MESH_HOME). The same sensors on the lake profile (PostgreSQL instance, Iceberg on Ceph, dbt on
Trino) publish the whole mesh in ``tests/lake/test_lake_profile.py``; the rules they apply do not
depend on the storage, so the cases below run once. The tests run in order and share the instance:

1. publishing benchmarks and emissions makes the sensors run companies, then portfolio_alignment;
2. an emissions run whose blocking contract check fails triggers nothing;
3. after reloading the consumer's code location, a publication still triggers, within about one tick;
4. a product whose last materialization is older than its SLA shows as overdue.
"""

import os
import shutil
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh_assets.orchestration.automation import UPSTREAM_RUNS_TAG, UPSTREAM_TAG, sensor_name
from mesh_assets.orchestration.services import DagsterServices
from mesh_assets.settings import REPO_ROOT, MeshSettings

pytestmark = pytest.mark.slow

TICK = 5  # MESH_TRIGGER_INTERVAL for these tests (seconds)
# Ceilings, not expectations: a sensor creates its run within a few ticks; a run (dbt included) may
# take minutes on a loaded 2-core machine. Waits end as soon as the event happens.
SENSOR_TIMEOUT = 300
RUN_TIMEOUT = 1200
EMISSIONS_CSV = "itr-sample/emissions.csv"
SENSOR_TAG = "dagster/sensor_name"
COMPANIES = sensor_name("companies")
PORTFOLIO = sensor_name("portfolio_alignment")
EMISSIONS = [
    ["emissions", n] for n in ("reported_emissions", "production", "emission_intensities", "company_targets")
]


class Mesh:
    def __init__(self, svc: DagsterServices, raw_dir: Path, profile: str):
        self.svc, self.raw_dir, self.profile = svc, raw_dir, profile
        self.started = time.time()

    def sensor_runs(self, sensor: str) -> list[dict]:
        return [
            r for r in self.svc.client.runs(tags={SENSOR_TAG: sensor}) if r["creationTime"] >= self.started
        ]

    def wait_for_sensor_run(self, sensor: str, after: set[str], timeout: float = SENSOR_TIMEOUT) -> dict:
        """The first run of ``sensor`` not in ``after`` (created within ``timeout``), once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [r for r in self.sensor_runs(sensor) if r["runId"] not in after]
            if new:
                return self.svc.client.wait_for_run(new[-1]["runId"], timeout=RUN_TIMEOUT)
            time.sleep(1)
        ticks = self.svc.client.sensor_ticks(*_location_sensor(sensor), limit=5)
        raise AssertionError(f"no run from {sensor} after {timeout}s; last ticks: {ticks}")

    def wait_for_ticks_after(
        self, sensor: str, timestamp: float, count: int = 2, timeout: float = SENSOR_TIMEOUT
    ) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ticks = [
                t
                for t in self.svc.client.sensor_ticks(*_location_sensor(sensor))
                if t["timestamp"] > timestamp
            ]
            if len(ticks) >= count:
                return ticks
            time.sleep(1)
        raise AssertionError(f"{sensor} did not tick {count} times in {timeout}s")

    def publish_benchmarks(self) -> list[str]:
        nodes = self.svc.client.graphql(
            "{ assetNodes { assetKey { path } isPartitioned partitionKeys repository { location { name } } } }"
        )["assetNodes"]
        bench = [n for n in nodes if n["repository"]["location"]["name"] == "benchmarks"]
        plain = [n["assetKey"]["path"] for n in bench if not n["isPartitioned"]]
        runs = [self.svc.client.launch_assets("benchmarks", plain)]
        for n in (n for n in bench if n["isPartitioned"]):
            keys = n["partitionKeys"]
            runs.append(
                self.svc.client.launch_assets(
                    "benchmarks", [n["assetKey"]["path"]], partition_range=(keys[0], keys[-1])
                )
            )
        return runs


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _location_sensor(sensor: str) -> tuple[str, str]:
    return sensor.split("__")[0], sensor


def _corrupt_unit(raw_dir: Path) -> None:
    """An unknown unit on one emissions row: the transform sets the row aside for a reason the
    reported_emissions contract does not accept, so its blocking contract check fails."""
    path = raw_dir / EMISSIONS_CSV
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",t CO2e,", ",furlongs CO2e,", 1)
    assert "furlongs" in lines[1]
    path.write_text("".join(lines))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    profile = "local"
    tmp = tmp_path_factory.mktemp(f"triggers-{profile}")
    raw_dir = tmp / "raw"
    shutil.copytree(REPO_ROOT / "data" / "raw", raw_dir)
    settings = MeshSettings.from_env(
        profile, {**os.environ, "MESH_RAW_DIR": str(raw_dir), "MESH_TRIGGER_INTERVAL": str(TICK)}
    ).replace(home=tmp / "mesh")
    extra_env = {"FRESHNESS_DAEMON_INTERVAL_SECONDS": "5"}
    with DagsterServices(settings, webserver_port=free_port(), extra_env=extra_env) as svc:
        yield Mesh(svc, raw_dir, profile)


def test_a_published_product_triggers_its_consumers_in_other_code_locations(mesh):
    launched = [*mesh.publish_benchmarks(), mesh.svc.client.launch_assets("emissions", EMISSIONS)]
    for run_id in launched:
        run = mesh.svc.client.wait_for_run(run_id)
        assert run["status"] == "SUCCESS", run
    # benchmarks/country_regions -> companies (sensor) -> company_master -> portfolio_alignment (sensor)
    companies = mesh.wait_for_sensor_run(COMPANIES, after=set())
    assert companies["status"] == "SUCCESS", companies
    assert companies["assetSelection"] == [["companies", "company_master"]]
    assert "benchmarks/country_regions" in companies["tags"][UPSTREAM_TAG]
    assert set(companies["tags"][UPSTREAM_RUNS_TAG].split(", ")) <= set(launched)

    portfolio = mesh.wait_for_sensor_run(PORTFOLIO, after=set())
    assert portfolio["status"] == "SUCCESS", portfolio
    selected = {tuple(k) for k in portfolio["assetSelection"]}
    # a new instance: portfolio_holdings was never materialized, so it joins the run
    assert selected == {
        ("portfolio_alignment", "company_temperature_scores"),
        ("portfolio_alignment", "portfolio_temperature_score"),
        ("portfolio_alignment", "portfolio_holdings"),
    }
    assert portfolio["creationTime"] >= companies["endTime"]
    # one downstream run per publication: nothing else was requested
    mesh.wait_for_ticks_after(PORTFOLIO, portfolio["endTime"], count=2)
    assert len(mesh.sensor_runs(PORTFOLIO)) == 1
    assert len(mesh.sensor_runs(COMPANIES)) == 1


def test_a_failed_contract_check_triggers_nothing(mesh):
    before = {r["runId"] for r in mesh.sensor_runs(PORTFOLIO)}
    assert before, "needs the first test"
    _corrupt_unit(mesh.raw_dir)
    run = mesh.svc.client.wait_for_run(
        mesh.svc.client.launch_assets("emissions", [["emissions", "reported_emissions"]])
    )
    assert run["status"] == "FAILURE", run
    # the sensor had two more chances after the run ended, and requested nothing
    mesh.wait_for_ticks_after(PORTFOLIO, run["endTime"], count=2)
    assert {r["runId"] for r in mesh.sensor_runs(PORTFOLIO)} == before
    # the tick that decided may have started just before the run's end was recorded (seen under
    # load): the reasons are read from every tick since the run was created
    ticks = [
        t
        for t in mesh.svc.client.sensor_ticks(*_location_sensor(PORTFOLIO), limit=200)
        if t["timestamp"] >= run["creationTime"]
    ]
    reasons = " ".join(t["skipReason"] or "" for t in ticks)
    assert "emissions/reported_emissions: not published" in reasons, ticks
    assert "contract" in reasons, ticks


def test_triggers_still_work_after_code_locations_reload(mesh):
    shutil.copy(REPO_ROOT / "data" / "raw" / EMISSIONS_CSV, mesh.raw_dir / EMISSIONS_CSV)
    log = mesh.svc.log_dir / "code-server-portfolio_alignment.log"
    starts = log.read_text().count("Starting Dagster code server for module")
    mesh.svc.client.reload_location("portfolio_alignment")  # the location whose sensor triggers
    # the code server really loaded the code again (a new process)
    assert log.read_text().count("Starting Dagster code server for module") == starts + 1
    before = {r["runId"] for r in mesh.sensor_runs(PORTFOLIO)}
    upstream = mesh.svc.client.wait_for_run(
        mesh.svc.client.launch_assets("emissions", [["emissions", "reported_emissions"]])
    )
    assert upstream["status"] == "SUCCESS", upstream
    triggered = mesh.wait_for_sensor_run(PORTFOLIO, after=before)
    assert triggered["status"] == "SUCCESS", triggered
    assert triggered["tags"][UPSTREAM_RUNS_TAG] == upstream["runId"]
    assert triggered["tags"][UPSTREAM_TAG] == "emissions/reported_emissions"
    latency = triggered["creationTime"] - upstream["endTime"]
    print(f"[{mesh.profile}] upstream success -> downstream run created: {latency:.1f}s (tick {TICK}s)")
    assert latency >= 0
    # Within one tick, however loaded the machine: no tick that started after the upstream run
    # ended passed over it (the run came from the first tick that could see the publication).
    ticks = sorted(
        mesh.svc.client.sensor_ticks(*_location_sensor(PORTFOLIO), limit=50), key=lambda t: t["timestamp"]
    )
    creating = next(t for t in ticks if triggered["runId"] in t["runIds"])
    passed_over = [t for t in ticks if upstream["endTime"] < t["timestamp"] < creating["timestamp"]]
    assert not passed_over, f"ticks after the upstream run ended created no run: {passed_over}"


FRESHNESS = """
query MeshFreshness($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
    freshnessStatusInfo { freshnessStatus freshnessStatusMetadata { lastMaterializedTimestamp } }
  }
}
"""


def _freshness(mesh, *keys: list[str]) -> dict[str, dict]:
    nodes = mesh.svc.client.graphql(FRESHNESS, {"keys": [{"path": k} for k in keys]})["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def test_a_product_older_than_its_sla_shows_as_overdue(mesh):
    from dagster import AssetKey, AssetMaterialization
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.instance.utils import RUNLESS_JOB_NAME

    overdue = ["portfolio_alignment", "portfolio_temperature_score"]  # SLA 24 h, read by no other domain
    warned = ["portfolio_alignment", "company_temperature_scores"]  # SLA 24 h, warning from 19.2 h
    fresh = ["companies", "company_master"]  # materialized by the first test
    now = datetime.now(UTC)
    with mesh.svc.open_instance() as instance:
        for key, age in ((overdue, timedelta(hours=25)), (warned, timedelta(hours=20))):
            event = DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                job_name=RUNLESS_JOB_NAME,
                event_specific_data=StepMaterializationData(
                    AssetMaterialization(asset_key=AssetKey(key), description="back-dated by a test")
                ),
            )
            instance.report_dagster_event(event, run_id="", timestamp=(now - age).timestamp())
    deadline = time.monotonic() + 90
    while True:
        status = _freshness(mesh, overdue, warned, fresh)
        states = {k: (v["freshnessStatusInfo"] or {}).get("freshnessStatus") for k, v in status.items()}
        if states == {
            "portfolio_alignment/portfolio_temperature_score": "DEGRADED",
            "portfolio_alignment/company_temperature_scores": "WARNING",
            "companies/company_master": "HEALTHY",
        }:
            break
        assert time.monotonic() < deadline, f"freshness states after 90 s: {states}"
        time.sleep(2)
    policy = status["portfolio_alignment/portfolio_temperature_score"]["internalFreshnessPolicy"]
    assert policy["failWindowSeconds"] == 24 * 3600
