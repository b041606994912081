"""Table maintenance on the embedded profile: compaction, snapshot expiry and orphan-file removal."""

import os
import re
import time
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mesh_assets.definitions import resources_for
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.maintenance import maintenance_job, orphan_files
from mesh_assets.lakehouse.tables import IcebergTables, TableRef
from mesh_assets.settings import get_settings


def _many_small_writes(n: int) -> None:
    tables = IcebergTables(load_catalog(get_settings()))
    for i in range(n):
        tables.write(TableRef("ops", "log"), pd.DataFrame({"i": [i], "msg": [f"m{i}"]}), mode="append")


def test_maintenance_compacts_expires_and_removes_orphans(mesh_home):
    _many_small_writes(10)
    table = load_catalog(get_settings()).load_table("ops.log")
    assert int(table.current_snapshot().summary["total-data-files"]) == 10
    # A file a killed writer left behind: in the data folder, referenced by no snapshot, old.
    data_dir = mesh_home / "local" / "warehouse" / "ops" / "log" / "data"
    orphan = data_dir / "00000-killed-writer.parquet"
    pq.write_table(pa.table({"i": [99]}), orphan)
    old = time.time() - 7 * 24 * 3600
    os.utime(orphan, (old, old))
    fresh = data_dir / "00000-write-in-progress.parquet"
    pq.write_table(pa.table({"i": [98]}), fresh)
    found = [os.path.basename(p) for p in orphan_files(table, datetime.now(UTC))]
    assert [name for name in found if name.endswith(".parquet")] == [
        "00000-killed-writer.parquet",
        "00000-write-in-progress.parquet",
    ]
    # Besides: the new-files manifest a manifest merge folded into its merged one (the writes merged
    # at the 10th: commit.manifest.min-count-to-merge); pyiceberg leaves it, no snapshot references
    # it, and the orphan removal takes it once it is older than the retention, as any orphan.
    assert all(
        re.fullmatch(r"[0-9a-f-]{36}-m\d+\.avro", name) for name in found if not name.endswith(".parquet")
    )

    job = maintenance_job("ops")
    run_config = {
        "ops": {
            "ops_maintain_tables": {
                "config": {"snapshot_retention_hours": 0, "orphan_retention_hours": 1, "compact_min_files": 5}
            }
        }
    }
    result = job.execute_in_process(resources=resources_for(get_settings()), run_config=run_config)
    assert result.success

    table = table.refresh()
    assert int(table.current_snapshot().summary["total-data-files"]) == 1
    assert len(table.snapshots()) == 1
    assert sorted(table.scan().to_pandas()["i"]) == list(range(10))
    assert not orphan.exists()
    assert fresh.exists()  # younger than the orphan retention: maybe a write in progress
    [observation] = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.asset_key == dg.AssetKey(["ops", "log"])
    assert observation.metadata["maintenance/orphans_removed"].value == 1
    assert observation.metadata["maintenance/snapshots_expired"].value >= 10


def test_every_domain_has_a_scheduled_maintenance_job():
    from domains.emissions import definitions

    defs = definitions.defs()
    assert defs.resolve_job_def("emissions_table_maintenance") is not None
    schedule = defs.resolve_schedule_def("emissions_table_maintenance_schedule")
    assert schedule.cron_schedule == "30 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_snapshot_expiry_follows_the_reference_time_it_is_given(mesh_home):
    """Retention counts back from ``now`` (the op's start, or a replayed schedule's tick), not the clock."""
    from datetime import UTC, datetime, timedelta

    from mesh_assets.lakehouse.maintenance import MaintenanceConfig, maintain_local

    tables = IcebergTables(load_catalog(get_settings()))
    ref = TableRef("ops", "history")
    for i in range(3):
        tables.write(ref, pd.DataFrame({"i": [i]}), mode="append")
    table = load_catalog(get_settings()).load_table("ops.history")
    config = MaintenanceConfig(snapshot_retention_hours=24, orphan_retention_hours=24, compact_min_files=100)
    a_day_ago = datetime.now(UTC) - timedelta(days=2)
    assert maintain_local(table, config, a_day_ago)["snapshots_expired"] == 0  # all younger than now - 24 h
    tomorrow = datetime.now(UTC) + timedelta(days=2)
    assert maintain_local(table.refresh(), config, tomorrow)["snapshots_expired"] == 2  # all but the last
