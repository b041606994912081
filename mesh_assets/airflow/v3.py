"""Airflow 3 for dagster-airlift 0.29: a JWT auth backend and an instance class on the ``/api/v2`` API.

dagster-airlift 0.29 (the line paired with Dagster 1.13) speaks Airflow 2's REST API only: its
``AirflowInstance`` builds every URL on ``/api/v1`` and its auth backends send basic auth (or an
MWAA session). Airflow 3 serves ``/api/v2`` (``/api/v1`` is 404), takes a bearer JWT from
``POST /auth/token`` (basic auth is 401), requires ``logical_date`` in a trigger body (null is
allowed: the run is then ordered by ``run_after``), calls datasets "assets" (``/assets``, whose
consumers are ``scheduled_dags``), and serves a DAG's source by dag id rather than by file token.

Both classes sit on airlift's public extension points (``AirflowAuthBackend`` is documented for
subclassing; ``AirflowInstance`` is what ``build_defs_from_airflow_instance`` and the sensor take),
so the polling sensor, the task/asset mapping and the proxied execution stay airlift's own code.
Decision record 0006 says why an adapter rather than waiting for upstream.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests
from dagster_airlift.core import AirflowAuthBackend, AirflowInstance
from dagster_airlift.core.filter import AirflowFilter
from dagster_airlift.core.runtime_representations import DagRun
from dagster_airlift.core.serialization.serialized_data import (
    DagInfo,
    Dataset,
    DatasetConsumingDag,
    DatasetProducingTask,
)
from dagster_shared.error import DagsterError

from mesh_assets.airflow.connection import TIMEOUT, AirflowBridgeError, AirflowCredentialsRejected, explain

REFRESH_MARGIN = 60.0  # seconds before a token's expiry at which a new one is fetched


class AirflowJwtAuthBackend(AirflowAuthBackend):
    """Bearer tokens from Airflow 3's ``POST /auth/token`` (simple or FAB auth manager), renewed before expiry."""

    def __init__(
        self,
        webserver_url: str,
        username: str,
        password: str,
        password_source: str = "MESH_AIRFLOW_PASSWORD or the airflow_password secret file",
    ) -> None:
        self._url = webserver_url.rstrip("/")
        self._password_source = password_source
        self.username = username
        self._password = password
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the password or the token
        return f"AirflowJwtAuthBackend({self._url!r}, user={self.username!r})"

    def get_webserver_url(self) -> str:
        return self._url

    def _fetch_token(self) -> None:
        try:
            response = requests.post(
                f"{self._url}/auth/token",
                json={"username": self.username, "password": self._password},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise explain(exc, url=self._url) from None
        if response.status_code in (401, 403):
            raise AirflowCredentialsRejected(
                f"Airflow at {self._url} rejected the credentials of user {self.username!r} "
                f"(HTTP {response.status_code} from /auth/token): set the right password in "
                f"{self._password_source}"
            )
        if response.status_code not in (200, 201):
            raise explain(response, url=self._url, what=" to POST /auth/token")
        token = str(response.json()["access_token"])
        self._token = token
        self._expires = _jwt_expiry(token)

    def get_session(self) -> requests.Session:
        with self._lock:
            if self._token is None or time.time() > self._expires - REFRESH_MARGIN:
                self._fetch_token()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self._token}"
        return session


def _jwt_expiry(token: str) -> float:
    """The ``exp`` claim (not verified: the server does that); an hour from now if absent."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, ValueError):
        return time.time() + 3600


def _with_logical_date(metadata: dict[str, Any]) -> dict[str, Any]:
    """Airflow 3 runs triggered with ``logical_date: null`` have none; airlift reads it: use ``run_after``."""
    if not metadata.get("logical_date"):
        metadata["logical_date"] = metadata.get("run_after") or metadata.get("start_date")
    return metadata


class Airflow3Instance(AirflowInstance):
    """dagster-airlift's ``AirflowInstance`` on Airflow 3's ``/api/v2``."""

    def get_api_url(self) -> str:
        return f"{self.auth_backend.get_webserver_url()}/api/v2"

    def list_dags(self, retrieval_filter: AirflowFilter | None = None) -> list[DagInfo]:
        dags = super().list_dags(retrieval_filter)
        for dag in dags:
            # Airflow 3 serves sources by dag id (GET /dagSources/{dag_id}); airlift passes file_token
            dag.metadata["airflow_file_token"] = dag.metadata.get("file_token")
            dag.metadata["file_token"] = dag.dag_id
        return dags

    def get_dag_source_code(self, file_token: str) -> str:
        response = self.auth_backend.get_session().get(
            f"{self.get_api_url()}/dagSources/{file_token}",
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise DagsterError(
                f"Failed to fetch source code of {file_token}. Status code: {response.status_code}, "
                f"Message: {response.text}"
            )
        return response.json().get("content") or ""

    def trigger_dag(
        self,
        dag_id: str,
        logical_date: datetime.datetime | None = None,
        conf: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {"logical_date": logical_date.isoformat() if logical_date else None}
        if conf:
            body["conf"] = conf
        response = self.auth_backend.get_session().post(
            f"{self.get_api_url()}/dags/{dag_id}/dagRuns", json=body, timeout=TIMEOUT
        )
        if response.status_code not in (200, 201):
            raise DagsterError(
                f"Failed to launch run for {dag_id}. Status code: {response.status_code}, Message: {response.text}"
            )
        return response.json()["dag_run_id"]

    def get_dag_run(self, dag_id: str, run_id: str):
        run = super().get_dag_run(dag_id, run_id)
        _with_logical_date(run.metadata)
        return run

    def get_dag_runs_batch(
        self,
        dag_ids: Sequence[str],
        end_date_gte: datetime.datetime | None = None,
        end_date_lte: datetime.datetime | None = None,
        start_date_gte: datetime.datetime | None = None,
        start_date_lte: datetime.datetime | None = None,
        offset: int = 0,
        states: Sequence[str] | None = None,
    ) -> tuple[list[DagRun], int]:
        runs, total = super().get_dag_runs_batch(
            dag_ids,
            end_date_gte=end_date_gte,
            end_date_lte=end_date_lte,
            start_date_gte=start_date_gte,
            start_date_lte=start_date_lte,
            offset=offset,
            states=states,
        )
        for run in runs:
            _with_logical_date(run.metadata)
        return runs, total

    def get_task_instance_batch(
        self, dag_id: str, task_ids: Sequence[str], run_id: str, states: Sequence[str]
    ):
        instances = super().get_task_instance_batch(dag_id, task_ids, run_id, states)
        for ti in instances:
            _with_logical_date(ti.metadata)
        return instances

    def get_task_instance_batch_time_range(self, *args: Any, **kwargs: Any):
        instances = super().get_task_instance_batch_time_range(*args, **kwargs)
        for ti in instances:
            _with_logical_date(ti.metadata)
        return instances

    def get_task_instance(self, dag_id: str, task_id: str, run_id: str):
        ti = super().get_task_instance(dag_id, task_id, run_id)
        _with_logical_date(ti.metadata)
        return ti

    def _get_datasets(
        self,
        *,
        limit: int,
        offset: int,
        retrieval_filter: AirflowFilter,
        dag_ids: Sequence[str] | None,
    ) -> Sequence[Dataset]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if retrieval_filter.dataset_uri_ilike:
            params["uri_pattern"] = retrieval_filter.dataset_uri_ilike
        response = self.auth_backend.get_session().get(
            f"{self.get_api_url()}/assets", params=params, timeout=TIMEOUT
        )
        if response.status_code != 200:
            raise DagsterError(
                f"Failed to fetch assets. Status code: {response.status_code}, Message: {response.text}"
            )
        datasets = []
        for asset in response.json()["assets"]:
            producing = [
                DatasetProducingTask(
                    dag_id=t["dag_id"],
                    task_id=t["task_id"],
                    created_at=t.get("created_at") or "",
                    updated_at=t.get("updated_at") or "",
                )
                for t in asset.get("producing_tasks") or []
                if not dag_ids or t["dag_id"] in dag_ids
            ]
            if not producing:
                continue
            consuming = [
                DatasetConsumingDag(
                    dag_id=d["dag_id"],
                    created_at=d.get("created_at") or "",
                    updated_at=d.get("updated_at") or "",
                )
                for d in (asset.get("scheduled_dags") or asset.get("consuming_dags") or [])
                if not dag_ids or d["dag_id"] in dag_ids
            ]
            datasets.append(
                Dataset(
                    id=asset["id"],
                    uri=asset["uri"],
                    extra=asset.get("extra") or {},
                    created_at=asset.get("created_at") or "",
                    updated_at=asset.get("updated_at") or "",
                    consuming_dags=consuming,
                    producing_tasks=producing,
                )
            )
        return datasets


__all__ = ["Airflow3Instance", "AirflowBridgeError", "AirflowJwtAuthBackend"]
