"""Tasks of the legacy DAG ``companies_vendor_market_data`` rewritten as Dagster assets.

Each asset here carries the key that ``airflow.yaml`` maps the Airflow task to. While the task is
``proxied: false`` in ``airflow/dags/companies/proxied_state/`` Airflow runs its own code and the
mesh only observes it; once ``proxied: true``, the Airflow task calls Dagster, which runs this asset
inside the DAG run (tagged with the Airflow run id), and Airflow carries on with the next task.
Setting it back to ``false`` returns the task to Airflow; nothing here changes.

Standard library only (no pandas): the code location imports this module when it loads.
"""

import csv
import json
import os
import re
from pathlib import Path

import dagster as dg

from mesh_assets.ingest.raw import RawInputs

DAG_RUN_ID_TAG = "dagster-airlift/airflow-dag-run-id"  # set by airlift's proxy operator


@dg.asset(
    key=["companies", "vendor_market_data"],
    deps=[dg.AssetKey(["companies", "vendor_market_data_staged"])],
    description=(
        "The vendor's market data (market cap, EVIC, currency per ISIN) as the mesh reads it: "
        "vendor/market_data.csv in the raw drop, published by the DAG companies_vendor_market_data."
    ),
    owners=["team:companies"],
)
def vendor_market_data(context: dg.AssetExecutionContext, raw: RawInputs) -> dg.MaterializeResult:
    """The publish step: this DAG run's staged table replaces the mesh's copy in one rename."""
    dag_run_id = context.run.tags.get(DAG_RUN_ID_TAG)
    if not dag_run_id:
        raise dg.Failure(
            description=(
                "companies/vendor_market_data publishes what a run of the Airflow DAG "
                "companies_vendor_market_data staged: run the job companies_vendor_market_data__run_in_airflow "
                "(or the DAG in Airflow) instead of materializing it alone"
            )
        )
    root = Path(raw.root)
    staged = root / "vendor" / "staging" / re.sub(r"[^A-Za-z0-9_.-]", "_", dag_run_id) / "loaded.csv"
    if not staged.is_file():
        raise dg.Failure(
            description=f"Airflow run {dag_run_id} staged nothing at {staged}: its load_market_data task must run first"
        )
    target = root / "vendor" / "market_data.csv"
    tmp = target.with_suffix(".csv.tmp")
    tmp.write_bytes(staged.read_bytes())
    os.replace(tmp, target)
    with open(target, newline="", encoding="utf-8") as fh:
        rows = sum(1 for _ in csv.DictReader(fh))
    published_by = f"dagster:{context.run_id} for airflow:companies_vendor_market_data/{dag_run_id}"
    target.with_suffix(".json").write_text(
        json.dumps({"rows": rows, "source": staged.parent.name, "published_by": published_by}, indent=2)
    )
    return dg.MaterializeResult(
        metadata={"rows": rows, "path": dg.MetadataValue.path(str(target)), "published_by": published_by}
    )
