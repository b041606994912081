"""Reliability against the real services: concurrent writers, a writer killed mid-write, the S3
gateway restarted during a run, and misconfiguration that must give one clear error."""

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.definitions import resources_for
from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.lakehouse.maintenance import maintenance_job
from mesh_assets.settings import REPO_ROOT, get_settings

pytestmark = [pytest.mark.lake, pytest.mark.slow]

PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
WRITER = str(Path(__file__).with_name("lake_writer.py"))


def _writer(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [PYTHON, WRITER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _keys(s3, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def _data_prefix(table) -> str:
    location = table.location().split("://", 1)[1]
    return location.split("/", 1)[1] + "/data/"


def _seed(namespace: str, table: str, rows: int) -> None:
    @dg.asset(key_prefix=namespace, name=table)
    def seed() -> pd.DataFrame:
        return pd.DataFrame({"n": range(rows), "payload": "seed"})

    assert dg.materialize(
        [seed], resources={"io_manager": IcebergIOManager.for_settings(get_settings("lake"))}
    ).success


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 120) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"writer never printed {marker!r}:\n{''.join(lines[-40:])}")


def test_eight_concurrent_runs_write_eight_partitions_and_none_is_lost(lake_stack, catalog, namespace):
    start_at = time.time() + 12  # after every process has imported Dagster
    procs = [_writer("partition", namespace, "contended", f"p{i}", 1000 + i, start_at) for i in range(8)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, "\n".join(o[-2000:] for o in outputs)
    retries = sum(
        int(line.split()[1]) for o in outputs for line in o.splitlines() if line.startswith("RETRIES")
    )
    data = catalog.load_table(f"{namespace}.contended").scan().to_pandas()
    assert data.groupby("part").size().to_dict() == {f"p{i}": 1000 + i for i in range(8)}
    print(f"8 concurrent writers: {retries} commit retries, all 8 partitions present")


def test_writer_killed_mid_write_publishes_nothing_and_orphans_are_removed(
    lake_stack, catalog, s3, namespace
):
    _seed(namespace, "killed", 100)
    table = catalog.load_table(f"{namespace}.killed")
    table.transaction().set_properties(
        {"write.target-file-size-bytes": str(2 * 1024 * 1024)}
    ).commit_transaction()
    before = catalog.load_table(f"{namespace}.killed").current_snapshot().snapshot_id
    prefix = _data_prefix(table)
    files_before = _keys(s3, lake_stack.s3_bucket, prefix)

    proc = _writer("stream", namespace, "killed", 400, 20_000, 0.05)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (_keys(s3, lake_stack.s3_bucket, prefix) - files_before):
        time.sleep(0.2)
    written = _keys(s3, lake_stack.s3_bucket, prefix) - files_before
    assert written, "the writer never wrote a data file"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    reread = catalog.load_table(f"{namespace}.killed")
    assert reread.current_snapshot().snapshot_id == before
    assert len(reread.scan().to_arrow()) == 100  # the previous snapshot, no partial data
    leftovers = _keys(s3, lake_stack.s3_bucket, prefix) - files_before
    assert leftovers >= written  # the killed writer's files are orphans now

    job = maintenance_job(namespace)
    config = {"snapshot_retention_hours": 0, "orphan_retention_hours": 0, "compact_min_files": 10_000}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_PROFILE", "lake")
        result = job.execute_in_process(
            resources=resources_for(get_settings("lake")),
            run_config={"ops": {f"{namespace}_maintain_tables": {"config": config}}},
        )
    assert result.success
    assert not (_keys(s3, lake_stack.s3_bucket, prefix) - files_before), "orphan files survived the cleanup"
    assert len(catalog.load_table(f"{namespace}.killed").scan().to_arrow()) == 100


def test_gateway_restart_during_a_run_never_publishes_partial_data(lake_stack, catalog, namespace):
    _seed(namespace, "restarted", 100)
    before = catalog.load_table(f"{namespace}.restarted").current_snapshot().snapshot_id
    batches, rows = 60, 20_000
    proc = _writer("stream", namespace, "restarted", batches, rows, 0.1)
    _wait_for(proc, "BATCH 5")
    pid_file = Path(lake_stack.services_dir) / "ceph" / "run" / "rgw.pid"
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    time.sleep(3)
    up = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/local/ceph.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    output = proc.communicate(timeout=600)[0]
    table = catalog.load_table(f"{namespace}.restarted")
    if proc.returncode == 0:
        assert "WRITE OK" in output
        assert len(table.scan().to_arrow()) == batches * rows
        assert table.current_snapshot().snapshot_id != before
    else:
        failure = [line for line in output.splitlines() if line.startswith("WRITE FAILED")]
        assert failure and "object store" in failure[0] and "mesh infra up" in failure[0], output[-3000:]
        assert table.current_snapshot().snapshot_id == before
        assert len(table.scan().to_arrow()) == 100
    print(f"gateway restart: writer {'retried and succeeded' if proc.returncode == 0 else 'failed cleanly'}")


def _materialize_failure(namespace: str, env: dict[str, str]) -> str:
    script = (
        "import dagster as dg, pandas as pd\n"
        "from mesh_assets.lakehouse.io_manager import IcebergIOManager\n"
        "from mesh_assets.settings import get_settings\n"
        f"@dg.asset(key_prefix={namespace!r})\n"
        "def misconfigured() -> pd.DataFrame:\n"
        "    return pd.DataFrame({'a': [1]})\n"
        "r = dg.materialize([misconfigured], resources={'io_manager': IcebergIOManager.for_settings(get_settings('lake'))}, raise_on_error=False)\n"
        "assert not r.success\n"
        "print('ERROR>', r.get_step_failure_events()[0].event_specific_data.error.cause.message)\n"
    )
    proc = subprocess.run(
        [PYTHON, "-c", script],
        env={**os.environ, "MESH_PROFILE": "lake", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("ERROR>")]
    return line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MESH_PG_PASSWORD": "wrong-password"}, "the Iceberg catalog database rejected the credentials"),
        ({"MESH_PORT_POSTGRES": "5999"}, "the Iceberg catalog database is not reachable"),
        ({"MESH_S3_BUCKET": "no-such-bucket"}, "the warehouse bucket 'no-such-bucket' does not exist"),
        ({"MESH_S3_SECRET_KEY": "wrong-secret"}, "rejected the S3 credentials"),
    ],
    ids=["wrong-db-password", "catalog-db-down", "missing-bucket", "wrong-s3-key"],
)
def test_misconfiguration_gives_one_clear_error(lake_stack, namespace, env, expected):
    line = _materialize_failure(namespace, env)
    assert expected in line, line
    assert "wrong-password" not in line and "wrong-secret" not in line  # never echo credentials
    assert "Traceback" not in line


def test_catalog_database_stopped_gives_one_clear_error(lake_stack, namespace):
    stop = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/local/postgres.sh"), "down"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stop.returncode == 0, stop.stderr
    try:
        line = _materialize_failure(namespace, {})
        assert "the Iceberg catalog database is not reachable" in line and "mesh infra up" in line, line
    finally:
        up = subprocess.run(
            ["bash", str(REPO_ROOT / "deploy/local/postgres.sh"), "up"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert up.returncode == 0, up.stderr[-2000:]
