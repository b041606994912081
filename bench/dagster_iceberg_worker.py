"""The dagster-iceberg side of ``mesh bench io``; runs in ``bench/.venv-dagster-iceberg``.

Usage (by ``bench/io_bench.py``): ``<venv>/bin/python bench/dagster_iceberg_worker.py SPEC.json``.
Performs the same writes and reads as the platform-side worker, on the same parquet input, with
dagster-iceberg 0.3.14's ``PandasIcebergIOManager`` / ``PyArrowIcebergIOManager`` on a SQLite
``SqlCatalog`` (tasks ``dagster-iceberg``), and with raw pyiceberg of this environment (tasks
``raw-0.11``). Writes its timings and peak RSS as JSON to the spec's ``output`` path.

dagster-iceberg's default write mode is a whole-table overwrite: that is what is measured.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.harness` only, never mesh_assets

from bench import harness

PARTITION_FIELD_NAME_PREFIX = "part"


def dagster_iceberg_rw(task: dict[str, Any], home: Path) -> dict[str, Any]:
    import dagster as dg
    import pandas as pd
    import pyarrow as pa
    from dagster_iceberg.config import IcebergCatalogConfig
    from dagster_iceberg.io_manager.arrow import PyArrowIcebergIOManager
    from dagster_iceberg.io_manager.pandas import PandasIcebergIOManager

    harness.sql_catalog(home)  # dagster-iceberg does not create namespaces: make "bench" first
    properties = {
        "type": "sql",
        "uri": f"sqlite:///{home / 'catalog.db'}",
        "warehouse": (home / "warehouse").as_uri(),
    }
    factory_cls = PandasIcebergIOManager if task["fmt"] == "pandas" else PyArrowIcebergIOManager
    factory = factory_cls(
        name="bench", config=IcebergCatalogConfig(properties=properties), namespace=harness.NAMESPACE
    )
    io = factory.create_io_manager(None)  # a DbIOManager, as Dagster builds it for a run
    # What Dagster passes as the resource's config at run time (DbIOManager reads it to connect).
    resource_config = {
        "name": "bench",
        "config": {"properties": properties, "partition_field_name_prefix": PARTITION_FIELD_NAME_PREFIX},
        "namespace": harness.NAMESPACE,
        "db_io_manager": "default",
    }
    key = dg.AssetKey([harness.NAMESPACE, "t"])
    wanted = dg.PythonObjectDagsterType(pa.Table if task["fmt"] == "arrow" else pd.DataFrame)

    def out_ctx():
        return dg.build_output_context(asset_key=key, resource_config=resource_config)

    def in_ctx():
        return dg.build_input_context(
            asset_key=key, upstream_output=out_ctx(), dagster_type=wanted, resource_config=resource_config
        )

    return harness.rw_task(
        task,
        seed=lambda small: io.handle_output(out_ctx(), small),
        write=lambda ctx, data: io.handle_output(ctx, data),
        read=lambda ctx: io.load_input(ctx),
        write_ctx=out_ctx,
        read_ctx=in_ctx,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    return harness.run_worker(argv[0], {"dagster-iceberg": dagster_iceberg_rw, "raw-0.11": harness.raw_rw})


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
