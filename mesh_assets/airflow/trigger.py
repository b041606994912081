"""Run a legacy DAG from the mesh: trigger it in Airflow and wait for its end.

:func:`trigger_and_wait` is the one place that starts a DAG run: it refuses a paused or unknown DAG
before triggering (a run of a paused DAG would sit queued forever), then polls the run until it
ends, and turns a failed run into one sentence naming the failed task and its error.
:func:`dag_trigger_job` wraps it as a Dagster job (``<dag_id>__run_in_airflow``) of the owning
domain's Airflow location; the DAG's mapped assets then get their materializations from airlift's
sensor, exactly as for a run started in Airflow.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from mesh_assets.airflow.connection import (
    AirflowConnection,
    AirflowUnreachable,
    DagNotRunnable,
    call,
    explain,
)
from mesh_assets.orchestration.runner import AIRFLOW_DAG_TAG

FAILED_TASK_STATES = {"failed", "upstream_failed"}
UNREACHABLE_GRACE = 120.0  # seconds without an answer while waiting before Airflow counts as gone
_ERROR_LINE = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception)): (.+)")


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    url: str


def _dag_url(conn: AirflowConnection, dag_id: str) -> str:
    return f"{conn.url}/dags/{dag_id}/grid"


def trigger_and_wait(
    connection: AirflowConnection,
    dag_id: str,
    *,
    conf: dict[str, Any] | None = None,
    timeout: float = 1800.0,
    poll: float = 2.0,
    log: Callable[[str], None] | None = None,
) -> DagRunResult:
    """Trigger ``dag_id`` and wait for the run to end; DagNotRunnable (one sentence) unless it succeeded."""
    say = log or (lambda _msg: None)
    conn = connection.detect()
    instance = conn.instance("mesh_trigger")
    response = call(instance, "get", f"/dags/{dag_id}")
    if response.status_code == 404:
        raise DagNotRunnable(
            f"DAG {dag_id} is not in Airflow at {conn.url}: check the dag id, and Airflow's import "
            "errors if its file did not parse"
        )
    if response.status_code != 200:
        raise explain(response, conn, what=f" for DAG {dag_id}")
    if response.json().get("is_paused"):
        raise DagNotRunnable(
            f"DAG {dag_id} is paused in Airflow at {conn.url}: unpause it (the toggle in the Airflow UI "
            f"or `airflow dags unpause {dag_id}`) and run again"
        )
    body: dict[str, Any] = {"conf": conf or {}}
    if conn.version == 3:
        body["logical_date"] = None  # required by Airflow 3; null orders the run by run_after
    response = call(instance, "post", f"/dags/{dag_id}/dagRuns", json=body)
    if response.status_code not in (200, 201):
        raise explain(response, conn, what=f" when triggering DAG {dag_id}")
    run_id = response.json()["dag_run_id"]
    say(f"triggered Airflow DAG {dag_id}: run {run_id} ({_dag_url(conn, dag_id)})")
    started = time.monotonic()
    state = "queued"
    last_answer = started
    while time.monotonic() - started < timeout:
        try:
            response = call(instance, "get", f"/dags/{dag_id}/dagRuns/{run_id}")
        except AirflowUnreachable:
            # a busy API server (one worker, small machine) may miss a poll; a gone one does not come back
            if time.monotonic() - last_answer > UNREACHABLE_GRACE:
                raise
            time.sleep(poll)
            continue
        last_answer = time.monotonic()
        if response.status_code == 200:
            new_state = response.json().get("state")
            if new_state != state:
                say(f"Airflow run {run_id}: {new_state}")
                state = new_state
            if state in ("success", "failed"):
                break
        elif response.status_code in (401, 403):
            raise explain(response, conn)
        # a 5xx from a SQLite-backed Airflow under load is retried by the next poll
        time.sleep(poll)
    else:
        raise DagNotRunnable(
            f"Airflow run {run_id} of DAG {dag_id} did not end within {timeout:.0f}s (still {state}): "
            f"check the scheduler and the run at {_dag_url(conn, dag_id)}"
        )
    seconds = time.monotonic() - started
    if state == "failed":
        raise DagNotRunnable(_failure_sentence(instance, conn, dag_id, run_id))
    return DagRunResult(dag_id, run_id, state, seconds, _dag_url(conn, dag_id))


def _failure_sentence(instance: Any, conn: AirflowConnection, dag_id: str, run_id: str) -> str:
    response = call(instance, "get", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    failed: list[dict] = []
    if response.status_code == 200:
        tis = response.json().get("task_instances", [])
        failed = [t for t in tis if t.get("state") == "failed"] or [
            t for t in tis if t.get("state") in FAILED_TASK_STATES
        ]
    if not failed:
        return f"Airflow run {run_id} of DAG {dag_id} failed: see the run at {_dag_url(conn, dag_id)}, fix it and run again"
    task = failed[0]["task_id"]
    error = _task_error(instance, dag_id, run_id, task, failed[0].get("try_number") or 1)
    because = f" ({error})" if error else ""
    return (
        f"Airflow run {run_id} of DAG {dag_id} failed at task {task}{because}: fix the cause and run "
        f"again; the task log is in Airflow at {_dag_url(conn, dag_id)}"
    )


def _task_error(instance: Any, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
    """The last ``SomeError: message`` line of the task's log, if the log can be read."""
    try:
        response = call(
            instance,
            "get",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={"Accept": "application/json"},
            params={"full_content": "true"},
        )
        if response.status_code != 200:
            return None
        content = response.json().get("content")
    except Exception:  # the log is a courtesy; the sentence stands without it
        return None
    if isinstance(content, list):  # Airflow 3: structured records; exceptions in error_detail
        for item in reversed(content):
            details = item.get("error_detail") if isinstance(item, dict) else None
            for detail in reversed(details or []):
                if isinstance(detail, dict) and detail.get("exc_type"):
                    name = str(detail["exc_type"]).split(".")[-1]
                    return f"{name}: {str(detail.get('exc_value', '')).strip()[:300]}"
        text = "\n".join(
            str(item.get("event", "")) if isinstance(item, dict) else str(item) for item in content
        )
    else:
        text = _airflow2_log_text(str(content))
    matches = [m for m in _ERROR_LINE.finditer(text) if "airflow" not in m.group(1).lower()]
    if not matches:
        return None
    name, message = matches[-1].group(1).split(".")[-1], matches[-1].group(2).strip().rstrip("'\"")
    return f"{name}: {message[:300]}"


def _airflow2_log_text(content: str) -> str:
    """Airflow 2 returns the log as the repr of ``[(host, text), ...]``: the text, unescaped."""
    import ast

    try:
        parts = ast.literal_eval(content)
        return "\n".join(str(p[1]) if isinstance(p, tuple | list) and len(p) > 1 else str(p) for p in parts)
    except (ValueError, SyntaxError, TypeError):
        return content.replace("\\n", "\n").replace("\\'", "'")


def dag_trigger_job(
    dag_id: str,
    connection: Callable[[], AirflowConnection],
    *,
    domain: str,
    timeout: float = 1800.0,
) -> dg.JobDefinition:
    """A job that runs the Airflow DAG ``dag_id`` and succeeds only if the DAG run succeeded."""

    @dg.op(
        name=f"run_{dag_id}",
        description=f"Triggers the Airflow DAG {dag_id} and waits for its run to end.",
        tags={"mesh/domain": domain},
    )
    def run_dag(context) -> None:  # no annotation: this module uses postponed annotations
        try:
            result = trigger_and_wait(connection(), dag_id, timeout=timeout, log=context.log.info)
        except Exception as exc:  # every failure is one sentence for the run's error
            from mesh_assets.airflow.connection import AirflowBridgeError

            if isinstance(exc, AirflowBridgeError):
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            raise
        context.log.info(f"Airflow run {result.run_id} of {dag_id} succeeded in {result.seconds:.0f}s")

    @dg.job(
        name=f"{dag_id}__run_in_airflow",
        description=(
            f"Runs the legacy Airflow DAG {dag_id} of the {domain} domain and waits for it; its mapped "
            "assets are materialized by the Airflow sensor when the run succeeds."
        ),
        tags={"mesh/domain": domain, AIRFLOW_DAG_TAG: dag_id},
    )
    def run_in_airflow() -> None:
        run_dag()

    return run_in_airflow
