"""Landing buckets: a domain's raw drops arrive in object storage, and a sensor starts its ingestion.

In the lake profile each domain has a landing bucket on the Ceph gateway,
``<s3_bucket>-landing-<domain>`` (``portfolio_alignment`` -> ``warehouse-landing-portfolio-alignment``),
made by the stack's provisioning with a policy that lets the domain's own user list and read it:
the sensor and the runs below use the domain's keys (``settings.s3_credentials()``).
A **drop** is the prefix ``drops/<drop id>/`` holding the domain's raw files at the paths its assets
read (e.g. ``drops/2026-11-29/itr-sample/fundamentals.csv``). A drop is complete when its marker
``drops/<drop id>/_SUCCESS`` exists: the uploader writes it last, as Spark and Hadoop jobs do, so a
drop still being uploaded is never read.

:func:`landing_sensor` (one per domain, lake profile) lists the markers with dagster-aws's
``get_objects`` and requests one run of the domain's ingestion job per new drop (its cursor: the
newest marker time and the drops marked then), with the run key ``landing:<drop id>`` (a drop is
ingested once even if the cursor were lost) and the tag
``mesh/landing_drop``. In that run, :class:`LandingRawInputs` (the domain's ``raw`` resource)
downloads the drop into ``<MESH_HOME>/lake/landing/<domain>/<drop id>/`` and the assets read it
exactly as they read ``MESH_RAW_DIR``: the same checks, the same errors naming the file. A bad
drop fails its run and, as any failed write or check, publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from mesh_assets.ingest.raw import RawInputError, RawInputs
from mesh_assets.lakehouse.s3 import S3Client, ensure_bucket, s3_client
from mesh_assets.resources import MeshResource

DROPS = "drops/"
READY = "_SUCCESS"
DROP_TAG = "mesh/landing_drop"
# a drop waits at most this long for its run: no need to list the bucket at the cross-domain
# triggers' pace (and the daemon evaluates every sensor of the mesh in turn)
MIN_INTERVAL = 30


def ready_drops(client: S3Client, bucket: str, cursor: str | None = None) -> tuple[list[str], str | None]:
    """The complete drops (marker written) not yet seen, oldest first, and the new cursor.

    The cursor is the newest marker time and the drops marked at that very time, so that a drop
    marked in the same instant as the last one seen is neither skipped nor listed twice.
    """
    from dagster_aws.s3.sensor import get_objects

    since, seen = None, set()
    if cursor:
        state = json.loads(cursor)
        since, seen = dt.datetime.fromisoformat(state["since"]), set(state["seen"])
    found: list[tuple[dt.datetime, str]] = []
    for obj in get_objects(bucket, prefix=DROPS, client=client):
        key, modified = obj.get("Key", ""), obj.get("LastModified")
        parts = key.removeprefix(DROPS).split("/")
        if len(parts) != 2 or parts[1] != READY or not parts[0] or modified is None:
            continue
        if since is None or modified > since or (modified == since and parts[0] not in seen):
            found.append((modified, parts[0]))
    if not found:
        return [], cursor
    found.sort()
    newest = found[-1][0]
    at_newest = {drop for modified, drop in found if modified == newest}
    if since is not None and newest == since:
        at_newest |= seen
    return [drop for _, drop in found], json.dumps({"since": newest.isoformat(), "seen": sorted(at_newest)})


def fetch_drop(client: S3Client, bucket: str, drop: str, target: Path) -> Path:
    """Download drop ``drop`` into ``target`` (once: a complete earlier download is reused)."""
    if (target / READY).exists():
        return target
    prefix = f"{DROPS}{drop}/"
    paginator = client.get_paginator("list_objects_v2")
    keys = [
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    if f"{prefix}{READY}" not in keys:
        raise RawInputError(f"drop {drop!r} in s3://{bucket}/{prefix} is not complete (no {READY} marker)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{drop}-", dir=target.parent))
    try:
        for key in keys:
            relative = key.removeprefix(prefix)
            if not relative or relative.endswith("/") or ".." in Path(relative).parts:
                continue
            local = staging / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(local))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # the marker came with it: the download is complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


class LandingRawInputs(RawInputs):
    """``RawInputs`` that reads the run's landing drop (tag ``mesh/landing_drop``) when it has one,
    else ``root`` (``MESH_RAW_DIR``) as usual."""

    mesh: MeshResource
    domain: str
    _drop_root: str = PrivateAttr(default="")
    _drop_uri: str = PrivateAttr(default="")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        drop = (context.run.tags if context.run else {}).get(DROP_TAG)
        if not drop:
            return
        settings = self.mesh.settings
        bucket = settings.landing_bucket(self.domain)
        target = settings.profile_home / "landing" / self.domain / drop
        self._drop_root = str(fetch_drop(s3_client(settings), bucket, drop, target))
        self._drop_uri = f"s3://{bucket}/{DROPS}{drop}/"

    def path(self, relative: str) -> Path:
        if not self._drop_root:
            return super().path(relative)
        path = Path(self._drop_root) / relative
        if not path.is_file():
            raise RawInputError(f"raw input {relative!r} not found in the landing drop {self._drop_uri}")
        return path

    def provenance(self, *relatives: str) -> dict[str, dg.MetadataValue]:
        found = super().provenance(*relatives)
        if self._drop_uri:
            found["source/drop"] = dg.MetadataValue.text(self._drop_uri)
        return found


def ingestion_job(
    domain: str, assets: Sequence[dg.AssetsDefinition]
) -> dg.UnresolvedAssetJobDefinition | None:
    """The domain's assets that read raw files (they require ``raw``) and are not partitioned
    (a partitioned product's drop names no partition), as one job; None if it has none."""
    keys = [
        key
        for a in assets
        if "raw" in a.required_resource_keys and a.partitions_def is None
        for key in a.keys
    ]
    if not keys:
        return None
    return dg.define_asset_job(f"{domain}__ingest_landing_drop", selection=keys)


def landing_sensor(domain: str, job: dg.UnresolvedAssetJobDefinition, interval: int) -> dg.SensorDefinition:
    """One run of ``job`` per new complete drop in the domain's landing bucket (see the module doc)."""

    @dg.sensor(
        name=f"{domain}__on_landing_drop",
        job=job,
        minimum_interval_seconds=max(interval, MIN_INTERVAL),
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={"mesh"},
        description=f"Ingests each complete drop (drops/<id>/ with a {READY} marker) of {domain}'s landing bucket.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> Any:
        settings = context.resources.mesh.settings
        bucket = settings.landing_bucket(domain)
        client = s3_client(settings)
        if ensure_bucket(client, bucket):
            return dg.SkipReason(f"created the landing bucket s3://{bucket}: upload drops to {DROPS}<id>/")
        drops, cursor = ready_drops(client, bucket, context.cursor)
        if not drops:
            return dg.SkipReason(f"no new complete drop in s3://{bucket}/{DROPS}")
        context.update_cursor(cursor)
        # the run key makes a drop ingested once even if the cursor were lost
        return [
            dg.RunRequest(run_key=f"landing:{drop}", tags={DROP_TAG: drop, "mesh/landing_bucket": bucket})
            for drop in drops
        ]

    return _sensor
