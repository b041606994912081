"""A writer process for the reliability tests (run as a script with the project's Python).

    lake_writer.py partition NAMESPACE TABLE KEY ROWS START_AT   one Dagster run writing one partition
    lake_writer.py stream NAMESPACE TABLE BATCHES ROWS_PER_BATCH PAUSE   a slow streamed overwrite

Both use the platform's IO manager on the lake profile, exactly as a domain's run does.
"""

import logging
import os
import sys
import time

os.environ["MESH_PROFILE"] = "lake"

import dagster as dg
import pandas as pd
import pyarrow as pa

from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.settings import get_settings

PARTITIONS = dg.StaticPartitionsDefinition([f"p{i}" for i in range(8)])


class _RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1


def write_partition(namespace: str, table: str, key: str, rows: int, start_at: float) -> int:
    @dg.asset(
        key_prefix=namespace, name=table, partitions_def=PARTITIONS, metadata={"partition_expr": "part"}
    )
    def partitioned(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"part": context.partition_key, "n": range(rows), "payload": "x" * 64})

    counter = _RetryCounter()
    logging.getLogger("pyiceberg").addHandler(counter)
    while time.time() < start_at:  # all writers commit at the same moment
        time.sleep(0.005)
    result = dg.materialize(
        [partitioned],
        partition_key=key,
        resources={"io_manager": IcebergIOManager.for_settings(get_settings("lake"))},
        raise_on_error=False,
    )
    print(f"RETRIES {counter.retries}", flush=True)
    return 0 if result.success else 1


def write_stream(namespace: str, table: str, batches: int, rows_per_batch: int, pause: float) -> int:
    @dg.asset(key_prefix=namespace, name=table)
    def streamed() -> pa.RecordBatchReader:
        schema = pa.schema([("n", pa.int64()), ("payload", pa.string())])

        def generate():
            for b in range(batches):
                start = b * rows_per_batch
                yield pa.record_batch(
                    [
                        pa.array(range(start, start + rows_per_batch)),
                        pa.array([f"row-{b}-" + "y" * 200] * rows_per_batch),
                    ],
                    schema=schema,
                )
                print(f"BATCH {b}", flush=True)
                time.sleep(pause)

        return pa.RecordBatchReader.from_batches(schema, generate())

    result = dg.materialize(
        [streamed],
        resources={"io_manager": IcebergIOManager.for_settings(get_settings("lake"))},
        raise_on_error=False,
    )
    if result.success:
        print("WRITE OK", flush=True)
        return 0
    error = result.get_step_failure_events()[0].event_specific_data.error
    cause = error.cause or error
    print(f"WRITE FAILED {cause.cls_name}: {cause.message.strip()}", flush=True)
    return 1


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "partition":
        sys.exit(write_partition(args[0], args[1], args[2], int(args[3]), float(args[4])))
    sys.exit(write_stream(args[0], args[1], int(args[2]), int(args[3]), float(args[4])))
