"""Table maintenance: one job per domain that keeps its Iceberg tables healthy, on a schedule.

For every table of the domain's namespace it
1. compacts small files (Trino ``ALTER TABLE ... EXECUTE optimize`` on the lake; a rewrite of the
   table's live rows in one snapshot locally),
2. expires snapshots older than the retention (pinned reads older than that stop working: the
   retention is the reproducibility window),
3. removes orphan files: files under the table location that no retained snapshot references and
   that are older than the orphan retention, such as the leftovers of a writer killed mid-write.
   The age threshold protects files of writes still in progress.

The job is built when a code location loads: pyarrow and pyiceberg are imported where the job runs.
"""

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.trino import TrinoResource
from mesh_assets.resources import MeshResource
from mesh_assets.settings import Profile

if TYPE_CHECKING:
    from pyiceberg.table import Table


class MaintenanceConfig(dg.Config):
    """Retention windows and the compaction threshold."""

    snapshot_retention_hours: float = 24 * 7
    orphan_retention_hours: float = 24 * 3
    compact_min_files: int = 8
    keep_last_snapshots: int = 1


def referenced_files(table: "Table") -> set[str]:
    """Every file a retained snapshot of ``table`` needs: metadata, manifest lists, manifests, data."""
    io = table.io
    files = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    for snapshot in table.snapshots():
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                files.add(entry.data_file.file_path)
    return {_normal(f) for f in files}


def _normal(path: str) -> str:
    return path.removeprefix("file://").removeprefix("s3://").removeprefix("s3a://")


def orphan_files(table: "Table", older_than: datetime) -> list[str]:
    """Files under the table location that no retained snapshot references and are older than ``older_than``."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(table.location())
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return []
    live = referenced_files(table)
    return sorted(
        info.path
        for info in infos
        if info.type == pafs.FileType.File
        and _normal(info.path) not in live
        and info.mtime is not None
        and info.mtime.replace(tzinfo=info.mtime.tzinfo or UTC) < older_than
    )


def _data_file_count(table: "Table") -> int:
    snapshot = table.current_snapshot()
    return int((snapshot.summary or {}).get("total-data-files", 0)) if snapshot else 0


def maintain_local(table: "Table", config: MaintenanceConfig, now: datetime) -> dict[str, int]:
    """Maintenance with pyiceberg alone (the embedded profile has no Trino)."""
    import pyarrow.fs as pafs

    report = {"files_before": _data_file_count(table), "snapshots_expired": 0, "orphans_removed": 0}
    if report["files_before"] >= config.compact_min_files:
        table.overwrite(table.scan().to_arrow(), snapshot_properties={"mesh.maintenance": "compact"})
        table = table.refresh()
        # the compaction's own commits (delete + append) are superseded the moment they land
        compacted = table.current_snapshot()
        if compacted is not None:
            now = max(now, datetime.fromtimestamp(compacted.timestamp_ms / 1000, UTC))
    expire_before = now - timedelta(hours=config.snapshot_retention_hours)
    keep = {s.snapshot_id for s in table.snapshots()[-config.keep_last_snapshots :]}
    keep |= {ref.snapshot_id for ref in table.refs().values()}
    old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < expire_before.timestamp() * 1000]
    expired = [s for s in old if s not in keep]
    if expired:
        table.maintenance.expire_snapshots().by_ids(expired).commit()
        table = table.refresh()
    report["snapshots_expired"] = len(expired)
    orphans = orphan_files(table, now - timedelta(hours=config.orphan_retention_hours))
    filesystem, _ = pafs.FileSystem.from_uri(table.location())
    for path in orphans:
        filesystem.delete_file(path)
    report["orphans_removed"] = len(orphans)
    report["files_after"] = _data_file_count(table)
    return report


def maintain_lake(trino: TrinoResource, identifier: str, config: MaintenanceConfig) -> dict[str, int]:
    """Maintenance through Trino's Iceberg table procedures."""
    namespace, name = identifier.split(".", 1)
    fqn = f'"{namespace}"."{name}"'
    files, snapshots = f'"{namespace}"."{name}$files"', f'"{namespace}"."{name}$snapshots"'
    before = trino.execute(f"SELECT count(*) FROM {files}", schema=namespace)[0][0]
    if before >= config.compact_min_files:
        trino.execute(f"ALTER TABLE {fqn} EXECUTE optimize", schema=namespace)
    snapshots_before = trino.execute(f"SELECT count(*) FROM {snapshots}", schema=namespace)[0][0]
    retention = f"{int(config.snapshot_retention_hours * 3600)}s"
    trino.execute(
        f"ALTER TABLE {fqn} EXECUTE expire_snapshots(retention_threshold => '{retention}')", schema=namespace
    )
    snapshots_after = trino.execute(f"SELECT count(*) FROM {snapshots}", schema=namespace)[0][0]
    orphan_retention = f"{int(config.orphan_retention_hours * 3600)}s"
    trino.execute(
        f"ALTER TABLE {fqn} EXECUTE remove_orphan_files(retention_threshold => '{orphan_retention}')",
        schema=namespace,
    )
    after = trino.execute(f"SELECT count(*) FROM {files}", schema=namespace)[0][0]
    return {
        "files_before": int(before),
        "files_after": int(after),
        "snapshots_expired": int(snapshots_before) - int(snapshots_after),
    }


def maintenance_job(domain: str) -> dg.JobDefinition:
    """The maintenance job of ``domain``: every table of its namespace."""

    @dg.op(name=f"{domain}_maintain_tables", tags={"mesh/domain": domain})
    def maintain_tables(
        context: dg.OpExecutionContext, config: MaintenanceConfig, mesh: MeshResource, trino: TrinoResource
    ) -> None:
        settings = mesh.settings
        catalog = load_catalog(settings)
        now = datetime.now(UTC)
        tables = sorted(".".join(t) for t in catalog.list_tables(domain))
        for identifier in tables:
            if settings.profile is Profile.LAKE:
                report = maintain_lake(trino, identifier, config)
            else:
                report = maintain_local(catalog.load_table(identifier), config, now)
            context.log.info(f"maintained {identifier}: {report}")
            # Shown on the asset's page, next to its materializations.
            context.log_event(
                dg.AssetObservation(
                    asset_key=dg.AssetKey(
                        identifier.split(".", 1)[0:1] + identifier.split(".", 1)[1].split("__")
                    ),
                    metadata={f"maintenance/{k}": dg.MetadataValue.int(v) for k, v in report.items()},
                )
            )

    @dg.job(
        name=f"{domain}_table_maintenance", description=f"Compact, expire and clean the tables of {domain}."
    )
    def job() -> None:
        maintain_tables()

    return job


def maintenance_schedule(job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """Nightly, in the quiet hours."""
    return dg.ScheduleDefinition(
        job=job, cron_schedule="30 2 * * *", default_status=dg.DefaultScheduleStatus.RUNNING
    )
