"""What both sides of the IO benchmark share: the data, the clock, the memory gauge, raw pyiceberg.

Imported by the platform-side worker (``python -m bench.io_bench --worker``) and by
``bench/dagster_iceberg_worker.py`` in its own virtual environment, so it needs only numpy,
pyarrow, pandas and pyiceberg (0.11 or 0.12): never ``mesh_assets`` nor ``dagster_iceberg``.

Memory is resident set size (Arrow allocates outside Python, so tracemalloc would miss it). Each
measured operation first resets the kernel's peak-RSS mark of the process (``clear_refs`` 5) and
then reads ``VmHWM``, so the peak belongs to that operation; where the kernel refuses the reset,
the process-wide peak (``ru_maxrss``) is reported instead and flagged.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NAMESPACE = "bench"
EPOCH = datetime(2024, 1, 1)
DAY_US = 86_400 * 1_000_000
REGIONS = ["EU", "NA", "APAC", "LATAM", "MEA", "OCEANIA", "CIS", "OTHER"]
N_COMPANIES = 50_000
SEED_ROWS = 1_000  # the untimed first write that creates each table

# ---- data ------------------------------------------------------------------------------------


def make_table(
    rows: int, *, seed: int = 7, first_id: int = 0, start: datetime = EPOCH, span_days: float = 365
) -> pa.Table:
    """A realistic mixed table (ints, floats with nulls, strings, a timestamp), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    companies = pa.array([f"C{i:06d}" for i in range(N_COMPANIES)], pa.string())
    company = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, N_COMPANIES, rows, dtype=np.int32)), companies
    )
    region = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, len(REGIONS), rows, dtype=np.int32)), pa.array(REGIONS, pa.string())
    )
    value = rng.lognormal(8.0, 1.5, rows)
    start_us = int((start - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    ts = start_us + rng.integers(0, int(span_days * DAY_US), rows, dtype=np.int64)
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64)),
            "company_id": company.cast(pa.string()),
            "region": region.cast(pa.string()),
            "year": pa.array(rng.integers(2015, 2026, rows, dtype=np.int32)),
            "emissions_t": pa.array(value, mask=rng.random(rows) < 0.01),
            "intensity": pa.array((value / rng.uniform(10, 1000, rows)).astype(np.float32)),
            "verified": pa.array(rng.random(rows) < 0.3),
            "ts": pa.array(ts, pa.timestamp("us")),
        }
    )


def write_parquet(path: Path, rows: int, *, chunk: int = 1_000_000) -> None:
    """Generate ``rows`` rows into ``path`` in chunks (bounded memory), once per run."""
    writer = None
    try:
        for i, first in enumerate(range(0, rows, chunk)):
            table = make_table(min(chunk, rows - first), seed=1000 + i, first_id=first)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=256_000)
    finally:
        if writer is not None:
            writer.close()


def load(path: str | Path, fmt: str) -> Any:
    """The benchmark input, fully in memory, as a pandas DataFrame or an Arrow table."""
    table = pq.read_table(path)
    if fmt == "arrow":
        return table
    df = table.to_pandas()
    del table
    return df


def stream(path: str | Path, batch_rows: int = 65_536) -> pa.RecordBatchReader:
    """The benchmark input as a stream: never more than a few batches in memory."""
    pf = pq.ParquetFile(path)
    return pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=batch_rows))


def day_table(day: int, rows: int, version: int = 0) -> pa.Table:
    """``rows`` rows whose timestamps lie in day ``day`` after EPOCH (one daily partition)."""
    return make_table(
        rows, seed=10_000 * version + day, first_id=day * rows, start=EPOCH + timedelta(days=day), span_days=1
    )


def day_key(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


# ---- measuring -------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float:
    kib = _status_kib("VmRSS")
    return (kib if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    kib = _status_kib("VmHWM")
    return (kib if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def settle(release: bool = True) -> None:
    """Collect garbage; with ``release``, also hand Arrow's unused memory back to the OS.

    Survivors are frozen out of the garbage collector: with Dagster's large heap a full
    collection takes ~0.15 s, which would otherwise land at random inside timed operations.
    """
    gc.collect()
    gc.freeze()
    if release:
        pa.default_memory_pool().release_unused()


def measure(
    op: Callable[[Any], Any], reps: int, prepare: Callable[[], Any] = lambda: None, cold_first: bool = True
) -> dict[str, Any]:
    """Run ``op(prepare())`` ``reps`` times: wall/CPU/system times, page faults, peak RSS of each run.

    The first run starts cold (Arrow's pool handed back to the OS, as in a fresh step process)
    unless ``cold_first`` is false;
    later runs reuse the pool (warm). On a VM, faulting fresh memory in costs a variable amount
    of system time, so the cold run is noisy and the best run is normally a warm one: the
    times compared are code-path costs. ``prepare`` (untimed) builds what the operation
    consumes, e.g. Dagster contexts or a fresh stream. The result of ``op`` is kept until the
    peak is read, so a read's peak includes it.
    """
    times, cpus, syss, faults, peaks, deltas, exact = [], [], [], [], [], [], True
    for i in range(reps):
        arg = prepare()
        settle(release=cold_first and i == 0)
        base = rss_mib()
        exact = _reset_peak() and exact
        u0 = resource.getrusage(resource.RUSAGE_SELF)
        c0, t0 = time.process_time(), time.perf_counter()
        out = op(arg)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        u1 = resource.getrusage(resource.RUSAGE_SELF)
        peak = _peak_mib()
        del out, arg
        times.append(elapsed)
        cpus.append(cpu)
        syss.append(u1.ru_stime - u0.ru_stime)
        faults.append(u1.ru_minflt - u0.ru_minflt)
        peaks.append(peak)
        deltas.append(peak - base)
    return {
        "times_s": [round(t, 4) for t in times],
        "cpu_s": [round(c, 4) for c in cpus],
        "sys_s": [round(c, 4) for c in syss],
        "page_faults": faults,
        "peaks_rss_mib": [round(p, 1) for p in peaks],
        "deltas_rss_mib": [round(d, 1) for d in deltas],
        "peak_is_per_operation": exact,
    }


def process_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- raw pyiceberg (the baseline: what any IO manager has to do at least) --------------------


def sql_catalog(home: Path, name: str = "bench"):
    from pyiceberg.catalog.sql import SqlCatalog

    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        name, uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri()
    )
    catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog


def as_arrow(data: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(data, (pa.Table, pa.RecordBatchReader)):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


class RawPyIceberg:
    """The same writes and reads with pyiceberg alone: create once, then ``overwrite`` / ``scan``.

    Every operation loads the table from the catalog first, as any process that did not create
    the table has to (and as the IO managers do).
    """

    def __init__(self, home: Path) -> None:
        self.catalog = sql_catalog(home)

    def create(self, name: str, sample: Any) -> None:
        self.catalog.create_table(f"{NAMESPACE}.{name}", schema=as_arrow(sample).schema)

    def write(self, name: str, data: Any, overwrite_filter=None) -> None:
        table = self.catalog.load_table(f"{NAMESPACE}.{name}")
        arrow = as_arrow(data)
        if overwrite_filter is None:
            table.overwrite(arrow)
        else:
            table.overwrite(arrow, overwrite_filter=overwrite_filter)

    def append(self, name: str, data: Any) -> None:
        self.catalog.load_table(f"{NAMESPACE}.{name}").append(as_arrow(data))

    def read(self, name: str, fmt: str) -> Any:
        scan = self.catalog.load_table(f"{NAMESPACE}.{name}").scan()
        return scan.to_arrow() if fmt == "arrow" else scan.to_pandas()


def daily_spec(iceberg_schema):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform

    source = iceberg_schema.find_field("ts")
    return PartitionSpec(
        PartitionField(source_id=source.field_id, field_id=1000, transform=DayTransform(), name="ts_day")
    )


def day_filter(day: int):
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

    start, end = EPOCH + timedelta(days=day), EPOCH + timedelta(days=day + 1)
    return And(GreaterThanOrEqual("ts", start.isoformat()), LessThan("ts", end.isoformat()))


def iceberg_schema_of(arrow_schema: pa.Schema):
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.table.name_mapping import MappedField, NameMapping

    mapping = NameMapping(
        [MappedField(field_id=i, names=[f.name]) for i, f in enumerate(arrow_schema, start=1)]
    )
    return pyarrow_to_schema(arrow_schema, name_mapping=mapping)


def raw_partitioned_table(raw: RawPyIceberg, name: str, n: int, rows_per_partition: int, mode: str) -> float:
    """A daily-partitioned table holding ``n`` partitions: one commit per day, or one backfill commit."""
    schema = iceberg_schema_of(day_table(0, 10).schema)
    raw.catalog.create_table(f"{NAMESPACE}.{name}", schema=schema, partition_spec=daily_spec(schema))
    t0 = time.perf_counter()
    if mode == "daily":
        for day in range(n):
            raw.append(name, day_table(day, rows_per_partition))
    else:
        raw.append(name, pa.concat_tables([day_table(d, rows_per_partition) for d in range(n)]))
    return time.perf_counter() - t0


def add_daily_history(
    table: Any, first_day: int, last_day: int, rows_per_partition: int, batch: int = 50
) -> float:
    """Give ``table`` one snapshot per day ``first_day..last_day``, fast.

    The table ends as a daily schedule would leave it (one append commit per day, so one
    snapshot per day, and one manifest per day unless the table merges manifests), but ``batch``
    days are staged per catalog commit so a 1,000-day history builds in seconds instead of the
    hours a commit per day takes. Both sides of the history benchmark get their history this way:
    only the measured overwrite differs.
    """
    import uuid

    from mesh_assets.lakehouse import pyiceberg_internals as internals
    from mesh_assets.lakehouse.transaction import MeshTransaction

    t0 = time.perf_counter()
    day = first_day
    while day <= last_day:
        tx = MeshTransaction(table)
        for d in range(day, min(day + batch, last_day + 1)):
            data = day_table(d, rows_per_partition)
            # as each side's writer commits: merging manifests where the table's properties say so
            # (the IO manager's tables), a manifest per commit where they do not (pyiceberg's default)
            with tx.update_snapshot().merge_append() as append:
                for data_file in internals.dataframe_to_data_files(
                    tx.table_metadata, data, table.io, uuid.uuid4()
                ):
                    append.append_data_file(data_file)
        table = tx.commit_transaction()
        day += batch
    return time.perf_counter() - t0


# ---- worker plumbing -------------------------------------------------------------------------


def run_worker(spec_path: str, handlers: dict[str, Callable[[dict[str, Any], Path], dict[str, Any]]]) -> int:
    """Run the tasks of a spec file, each in a fresh catalog, and write their results as JSON."""
    import shutil

    started = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    workdir = Path(spec["workdir"])
    out: dict[str, Any] = {"python": sys.version.split()[0], "versions": _versions(), "tasks": []}
    for task in spec["tasks"]:
        home = workdir / task["id"]
        home.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            result = handlers[task["impl"]](task, home)
            out["tasks"].append({**task, "result": result, "elapsed_s": round(time.perf_counter() - t0, 2)})
        except Exception as exc:  # report it and go on with the other tasks
            import traceback

            traceback.print_exc()
            out["tasks"].append({**task, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            settle()
            shutil.rmtree(home, ignore_errors=True)
    out["process_peak_rss_mib"] = round(process_peak_mib(), 1)
    out["elapsed_s"] = round(time.perf_counter() - started, 2)
    Path(spec["output"]).write_text(json.dumps(out, indent=1))
    return 0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("pyiceberg", "pyarrow", "pandas", "numpy", "dagster", "dagster-iceberg"):
        with contextlib.suppress(PackageNotFoundError):
            found[dist] = version(dist)
    return found


def rw_task(
    task: dict[str, Any],
    *,
    seed: Callable[[Any], Any],
    write: Callable[[Any, Any], Any],
    read: Callable[[Any], Any],
    write_ctx: Callable[[], Any] = lambda: None,
    read_ctx: Callable[[], Any] = lambda: None,
) -> dict[str, Any]:
    """The write/read measurement of one variant: same data, same repetitions, on every side.

    ``seed`` creates the table with a small slice and a small read follows (both untimed), so
    every timed write overwrites an existing table and no timed call pays first-use costs;
    ``write_ctx`` / ``read_ctx`` build per-call arguments (contexts) untimed.
    """
    data = load(task["parquet"], task["fmt"])
    rows = len(data)
    settle()
    loaded = rss_mib()
    seed(data.iloc[:SEED_ROWS] if hasattr(data, "iloc") else data.slice(0, SEED_ROWS))
    read(read_ctx())  # warms the read path (lazy imports, thread pools) like the seed warms writes

    def checked_read(ctx: Any) -> Any:
        out = read(ctx)
        if len(out) != rows:
            raise AssertionError(f"read {len(out)} rows, wrote {rows}")
        return out

    w = measure(lambda ctx: write(ctx, data), task["reps"], prepare=write_ctx)
    r = measure(checked_read, task["reps"], prepare=read_ctx)
    return {"rows": rows, "input_rss_mib": round(loaded, 1), "write": w, "read": r}


def raw_stream(task: dict[str, Any], home: Path) -> dict[str, Any]:
    """``table.overwrite(reader)`` with pyiceberg alone (0.12 accepts a RecordBatchReader)."""
    raw = RawPyIceberg(home)
    seed = make_table(SEED_ROWS)
    raw.create("t", seed)
    raw.write("t", seed)
    before = rss_mib()
    stats = measure(
        lambda reader: raw.write("t", reader), task["reps"], prepare=lambda: stream(task["parquet"])
    )
    rows = raw.catalog.load_table(f"{NAMESPACE}.t").scan().count()
    assert rows == task["rows"], f"streamed {rows} rows, expected {task['rows']}"
    return {"rows": rows, "input_rss_mib": round(before, 1), "write": stats}


def raw_rw(task: dict[str, Any], home: Path) -> dict[str, Any]:
    raw = RawPyIceberg(home)

    def seed(small: Any) -> None:
        raw.create("t", small)
        raw.write("t", small)

    return rw_task(
        task,
        seed=seed,
        write=lambda _, data: raw.write("t", data),
        read=lambda _: raw.read("t", task["fmt"]),
    )
