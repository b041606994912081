"""companies_vendor_market_data: the companies team's legacy Airflow DAG for the vendor's market data.

A market-data vendor drops a CSV (market capitalisation, EVIC, currency per ISIN) into
``<mesh raw dir>/vendor/incoming/``. This DAG receives the newest drop (or the one named in the run's
conf, ``{"drop": "<file name>"}``), validates it, loads it into a per-run staging folder, and
publishes it to ``<mesh raw dir>/vendor/market_data.csv``: the raw drop the mesh reads
(``RawInputs``), where the companies domain's products pick it up. The mesh sees each task through
the asset keys ``domains/companies/airflow.yaml`` maps it to (``companies/vendor_market_data`` for
the publish task), and moves tasks into Dagster one at a time with ``proxied_state/`` (airlift).

Runs on Airflow 2.11 and 3.x unchanged: the imports below pick each version's module, and the
callables use only the standard library (the Airflow environment is not the mesh's).
``mesh_raw_dir`` is an Airflow variable (``deploy/local/airflow.sh`` sets
``AIRFLOW_VAR_MESH_RAW_DIR``).
"""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import datetime
from pathlib import Path

from dagster_airlift.in_airflow import load_proxied_state_from_yaml, proxying_to_dagster

try:  # Airflow 3: the task SDK
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, Variable
    from airflow.sdk import Asset as Dataset
except ImportError:  # Airflow 2
    from airflow.datasets import Dataset
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator

    from airflow import DAG

DAG_ID = "companies_vendor_market_data"
COLUMNS = ["vendor_id", "isin", "company_name", "as_of_date", "currency", "market_cap", "evic"]
# The mesh's currencies (ISO 4217) the companies domain converts; anything else is a vendor error.
CURRENCIES = {
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CHF",
    "CAD",
    "AUD",
    "SEK",
    "NOK",
    "DKK",
    "CNY",
    "HKD",
    "INR",
    "KRW",
}
ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
# Where the mesh reads the published product; the URI names its asset key (domain/product).
PUBLISHED = Dataset("mesh://companies/vendor_market_data")


def _raw_dir() -> Path:
    return Path(Variable.get("mesh_raw_dir"))


def _staging(run_id: str) -> Path:
    return _raw_dir() / "vendor" / "staging" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def receive_vendor_drop(**context) -> str:
    """Copy the vendor's drop into this run's staging folder (the incoming folder is the vendor's)."""
    incoming = _raw_dir() / "vendor" / "incoming"
    conf = (context.get("dag_run").conf or {}) if context.get("dag_run") else {}
    if conf.get("drop"):
        drop = incoming / conf["drop"]
    else:
        drops = sorted(incoming.glob("*.csv"))
        if not drops:
            raise FileNotFoundError(
                f"no vendor drop in {incoming}: the vendor delivers market_data_<date>.csv there"
            )
        drop = drops[-1]
    if not drop.is_file():
        raise FileNotFoundError(f"vendor drop {drop} does not exist")
    staging = _staging(context["run_id"])
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "drop.csv").write_bytes(drop.read_bytes())
    (staging / "source.txt").write_text(drop.name)
    return drop.name


def validate_market_data(**context) -> int:
    """Columns present, ISINs well formed, currency known, amounts positive numbers; else fail."""
    staging = _staging(context["run_id"])
    with open(staging / "drop.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"vendor drop {(staging / 'source.txt').read_text()} lacks columns {missing}")
        rows = list(reader)
    problems = []
    for line, row in enumerate(rows, start=2):
        if not ISIN.match(row["isin"] or ""):
            problems.append(f"line {line}: isin {row['isin']!r} is not an ISIN")
        if row["currency"] not in CURRENCIES:
            problems.append(f"line {line}: currency {row['currency']!r} is not one the mesh converts")
        for column in ("market_cap", "evic"):
            try:
                ok = float(row[column]) > 0
            except ValueError:
                ok = False
            if not ok:
                problems.append(f"line {line}: {column} {row[column]!r} is not a positive number")
        try:
            datetime.strptime(row["as_of_date"], "%Y-%m-%d")
        except ValueError:
            problems.append(f"line {line}: as_of_date {row['as_of_date']!r} is not YYYY-MM-DD")
    if not rows:
        problems.append("the drop has no rows")
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise ValueError(f"vendor drop rejected, {len(problems)} problem(s): {shown}")
    (staging / "validated.csv").write_bytes((staging / "drop.csv").read_bytes())
    return len(rows)


def load_market_data(**context) -> int:
    """Typed, one row per ISIN (the latest as_of_date wins), sorted: the staged table."""
    staging = _staging(context["run_id"])
    with open(staging / "validated.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    latest: dict[str, dict] = {}
    for row in rows:
        if row["isin"] not in latest or row["as_of_date"] >= latest[row["isin"]]["as_of_date"]:
            latest[row["isin"]] = row
    with open(staging / "loaded.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for isin in sorted(latest):
            row = latest[isin]
            writer.writerow(
                {**row, "market_cap": f"{float(row['market_cap']):.2f}", "evic": f"{float(row['evic']):.2f}"}
            )
    return len(latest)


def publish_market_data(**context) -> str:
    """Replace the mesh's copy in one rename, with a manifest naming the run that produced it."""
    staging = _staging(context["run_id"])
    target = _raw_dir() / "vendor" / "market_data.csv"
    tmp = target.with_suffix(".csv.tmp")
    tmp.write_bytes((staging / "loaded.csv").read_bytes())
    os.replace(tmp, target)
    with open(target, newline="", encoding="utf-8") as fh:
        count = sum(1 for _ in csv.DictReader(fh))
    manifest = {
        "rows": count,
        "source": (staging / "source.txt").read_text(),
        "published_by": f"airflow:{DAG_ID}/{context['run_id']}",
    }
    target.with_suffix(".json").write_text(json.dumps(manifest, indent=2))
    return str(target)


with DAG(
    dag_id=DAG_ID,
    description="Vendor market data (market cap, EVIC, currency) into the mesh's raw drop",
    schedule=None,  # the vendor's delivery (or the mesh) triggers it
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["domain:companies", "mesh"],
    default_args={"owner": "companies", "retries": 0},
) as dag:
    receive = PythonOperator(task_id="receive_vendor_drop", python_callable=receive_vendor_drop)
    validate = PythonOperator(task_id="validate_market_data", python_callable=validate_market_data)
    load = PythonOperator(task_id="load_market_data", python_callable=load_market_data)
    publish = PythonOperator(
        task_id="publish_market_data", python_callable=publish_market_data, outlets=[PUBLISHED]
    )
    receive >> validate >> load >> publish


# Last statement of the file: tasks marked proxied in proxied_state/<dag_id>.yaml become
# operators that run their mapped assets in Dagster (DAGSTER_URL) and wait for them.
proxying_to_dagster(
    global_vars=globals(),
    proxied_state=load_proxied_state_from_yaml(Path(__file__).parent / "proxied_state"),
)
