"""A domain's landing bucket on the Ceph gateway (lake profile): a complete drop starts the domain's
ingestion once, a drop still being uploaded is not read, and a bad drop fails with its file named
and publishes nothing.

Real parts: Ceph's S3 gateway for the bucket and the drops, the PostgreSQL catalog, the Iceberg
warehouse on Ceph, the companies domain's code location as the lake profile builds it. The sensor is
evaluated and the runs executed in this process on a test instance (the daemon that evaluates
sensors in `mesh ui` is exercised by tests/automation).
"""

from __future__ import annotations

import importlib
import io
import uuid

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.definitions import build_domain_definitions
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.orchestration import landing
from mesh_assets.resources import MeshResource
from mesh_assets.settings import REPO_ROOT, MeshSettings

DOMAIN = "companies"
FUNDAMENTALS = "itr-sample/fundamentals.csv"
SENSOR = f"{DOMAIN}__on_landing_drop"
JOB = f"{DOMAIN}__ingest_landing_drop"

pytestmark = pytest.mark.lake


def _defs(settings: MeshSettings, domain: str) -> dg.Definitions:
    return build_domain_definitions(
        domain, importlib.import_module(f"domains.{domain}.assets"), settings=settings
    )


def _tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, settings: MeshSettings, cursor: str | None
):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"mesh": MeshResource.of(settings)}
    )
    return sensor.evaluate_tick(context)


def _upload(client, bucket: str, drop: str, files: dict[str, bytes], *, complete: bool) -> None:
    for relative, body in files.items():
        client.put_object(Bucket=bucket, Key=f"drops/{drop}/{relative}", Body=body)
    if complete:
        client.put_object(Bucket=bucket, Key=f"drops/{drop}/{landing.READY}", Body=b"")


def _empty(client, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


@pytest.fixture
def bucket(lake_stack: MeshSettings):
    """The companies domain's landing bucket, emptied of earlier drops before and after: a drop
    left behind would be ingested by the next daemon that ticks the domain's landing sensor (the
    lake mesh's, tests/lake/test_lake_profile.py), and this test's drops are partial on purpose."""
    client = landing.s3_client(lake_stack)
    name = lake_stack.landing_bucket(DOMAIN)
    landing.ensure_bucket(client, name)
    _empty(client, name)
    yield client, name
    _empty(client, name)


def test_a_complete_drop_is_ingested_once_and_a_bad_drop_publishes_nothing(lake_stack, bucket) -> None:
    settings = lake_stack
    client, name = bucket
    assert name == f"{settings.s3_bucket}-landing-companies"
    defs = _defs(settings, DOMAIN)
    sensor = defs.resolve_sensor_def(SENSOR)
    assert sensor.job_name == JOB
    sample = (REPO_ROOT / "data" / "raw" / FUNDAMENTALS).read_bytes()
    good, bad = f"good-{uuid.uuid4().hex[:8]}", f"bad-{uuid.uuid4().hex[:8]}"

    with dg.instance_for_test() as instance:
        # company_master reads benchmarks' country_regions from the lake: publish it first
        benchmarks = _defs(settings, "benchmarks").resolve_implicit_global_asset_job_def()
        assert benchmarks.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(["benchmarks", "country_regions"])]
        ).success

        # files without their marker: an upload in progress is not a drop yet
        _upload(client, name, good, {FUNDAMENTALS: sample}, complete=False)
        tick = _tick(sensor, instance, settings, None)
        assert not tick.run_requests and "no new complete drop" in (tick.skip_message or "")

        client.put_object(Bucket=name, Key=f"drops/{good}/{landing.READY}", Body=b"")
        tick = _tick(sensor, instance, settings, None)
        (request,) = tick.run_requests
        assert request.run_key == f"landing:{good}" and request.tags[landing.DROP_TAG] == good
        cursor = tick.cursor
        # the next tick with the cursor asks for nothing more
        assert not _tick(sensor, instance, settings, cursor).run_requests

        job = defs.resolve_job_def(JOB)
        result = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_step_failure]
        materialization = result.asset_materializations_for_node("companies__company_master")[0]
        assert materialization.metadata["source/drop"].value == f"s3://{name}/drops/{good}/"
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks)

        table = load_catalog(settings).load_table(("companies", "company_master"))
        published = table.current_snapshot().snapshot_id

        # a bad drop: the fundamentals without their LEI column
        broken = pd.read_csv(io.BytesIO(sample)).drop(columns=["company_lei"]).to_csv(index=False)
        _upload(client, name, bad, {FUNDAMENTALS: broken.encode()}, complete=True)
        tick = _tick(sensor, instance, settings, cursor)
        (request,) = tick.run_requests
        assert request.run_key == f"landing:{bad}"
        result = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        assert not result.success
        errors = " ".join(
            e.step_failure_data.error.to_string()
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data.error
        )
        assert FUNDAMENTALS in errors and "lacks required column(s) ['company_lei']" in errors, errors
        table = load_catalog(settings).load_table(("companies", "company_master"))
        assert table.current_snapshot().snapshot_id == published, "a bad drop changed the product"
