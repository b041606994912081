"""The platform's one client of a running Dagster: GraphQL over HTTP, the calls the UI makes.

``mesh demo`` (through :mod:`~mesh_assets.orchestration.runner`), ``mesh ui``'s start-up checks
and the tests launch runs, wait for them and read locations, sensors and runs through this class,
so there is one way to launch a run and one wait loop. Every wait is for an event (a run ended, a
location loaded) with a ceiling, polling the webserver; none sleeps a fixed time.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mesh_assets.orchestration import graphql as gql
from mesh_assets.orchestration.dagster_internals import SINGLETON_REPOSITORY

TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
POLL = 0.5


class DagsterClientError(RuntimeError):
    """The webserver refused a call, answered with GraphQL errors, or a wait ran out."""


class CodeLocationError(DagsterClientError):
    """A code location failed to load; the message has its Python error."""


@dataclass
class RunOutcome:
    """A run as the mesh reports it: status, seconds, and the errors of a run that did not succeed."""

    run_id: str
    location: str
    assets: tuple[tuple[str, ...], ...]
    partition_range: tuple[str, str] | None = None
    status: str | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"


class DagsterClient:
    """GraphQL calls to the webserver at ``url``.

    ``alive`` is called between polls of every wait, so a caller that owns the processes (the
    services) can stop a wait at once when one of them died rather than at the ceiling.
    """

    def __init__(self, url: str, alive: Callable[[], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self._alive = alive or (lambda: None)

    # ---- transport ---------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60.0) -> dict:
        """POST to ``/graphql``; the ``data``, or DagsterClientError with the GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DagsterClientError(
                f"GraphQL HTTP {exc.code} from {self.url}: {exc.read()[:2000]!r}"
            ) from None
        if payload.get("errors"):
            raise DagsterClientError("; ".join(e.get("message", str(e)) for e in payload["errors"]))
        return payload["data"]

    def _wait(self, what: str, timeout: float, probe: Callable[[], Any]) -> Any:
        """Poll ``probe`` until it returns a value other than None; DagsterClientError at ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            self._alive()
            try:
                value = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:  # not up yet
                value, last = None, exc
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise DagsterClientError(f"{what} after {timeout:.0f}s (last: {last})")
            time.sleep(POLL)

    # ---- workspace ---------------------------------------------------------------------------
    def locations(self) -> dict[str, dict[str, Any]]:
        """Each code location: ``status`` (LOADING/LOADED), ``ready``, ``error`` (its load error, or
        None) and ``image`` (what the UI shows as its image: ``mesh/<location>:<code version>``)."""
        data = self.graphql(gql.LOCATIONS, timeout=10)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise DagsterClientError(f"workspace: {data.get('message')}")
        return self._entries(data)

    @staticmethod
    def _entries(data: dict) -> dict[str, dict[str, Any]]:
        out = {}
        for entry in data["locationEntries"]:
            loaded = entry["locationOrLoadError"] or {}
            error = loaded.get("message") if loaded.get("__typename") == "PythonError" else None
            ready = entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation"
            shown = {m["key"]: m["value"] for m in entry.get("displayMetadata") or []}
            out[entry["name"]] = {
                "status": entry["loadStatus"],
                "ready": ready,
                "error": error,
                "image": shown.get("image"),
            }
        return out

    def wait_for_locations(
        self, names: Iterable[str], timeout: float = 300.0, *, allow_errors: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Wait until every location of ``names`` has loaded (or failed, with ``allow_errors``)."""
        wanted = set(names)

        def probe() -> dict[str, dict[str, Any]] | None:
            data = self.graphql(gql.LOCATIONS, timeout=10)["workspaceOrError"]
            if data["__typename"] != "Workspace":
                return None  # the webserver is still building its workspace
            entries = self._entries(data)
            errors = {n: e["error"] for n, e in entries.items() if n in wanted and e["error"]}
            if errors and not allow_errors:
                text = "\n".join(f"- {n}: {m.strip()[:2000]}" for n, m in errors.items())
                raise CodeLocationError(f"code location(s) failed to load:\n{text}")
            settled = {n for n, e in entries.items() if e["ready"] or e["error"]}
            return entries if wanted <= settled else None

        return self._wait(f"code locations {sorted(wanted)} not loaded", timeout, probe)

    def reload_location(self, name: str, timeout: float = 300.0) -> None:
        """Reload one code location (the UI's "Reload") and wait until it is loaded again."""
        result = self.graphql(gql.RELOAD_LOCATION, {"name": name})["reloadRepositoryLocation"]
        if result["__typename"] != "WorkspaceLocationEntry":
            raise DagsterClientError(
                f"reloading {name} failed ({result['__typename']}): {result.get('message')}"
            )
        self.wait_for_locations([name], timeout)

    def wait_for_daemon(self, timeout: float = 120.0, daemons: tuple[str, ...] = ("SENSOR",)) -> None:
        """Wait until the daemon's threads (default: the sensor daemon) report healthy heartbeats."""

        def probe() -> bool | None:
            statuses = self.graphql(gql.DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
            healthy = {s["daemonType"]: s["healthy"] for s in statuses}
            return True if all(healthy.get(d) for d in daemons) else None

        self._wait(f"daemon {daemons} not healthy", timeout, probe)

    # ---- assets ------------------------------------------------------------------------------
    def asset_nodes(self) -> list[dict[str, Any]]:
        return self.graphql(gql.ASSET_NODES)["assetNodes"]

    def latest_materializations(self, paths: list[list[str]]) -> dict[tuple[str, ...], dict[str, Any]]:
        """Metadata of each asset's latest materialization (label -> value), by key path."""
        data = self.graphql(gql.LATEST_MATERIALIZATIONS, {"keys": [{"path": p} for p in paths]})
        out: dict[tuple[str, ...], dict[str, Any]] = {}
        for node in data["assetNodes"]:
            events = node["assetMaterializations"]
            values: dict[str, Any] = {}
            for entry in events[0]["metadataEntries"] if events else []:
                if "intRepr" in entry:  # GraphQL's Int is 32-bit: snapshot ids come as their text
                    values[entry["label"]] = int(entry["intRepr"])
                else:
                    values[entry["label"]] = next(
                        (entry[k] for k in ("floatValue", "text") if k in entry), None
                    )
            out[tuple(node["assetKey"]["path"])] = values
        return out

    # ---- runs --------------------------------------------------------------------------------
    def launch_assets(
        self,
        location: str,
        paths: list[list[str]],
        *,
        tags: dict[str, str] | None = None,
        partition_range: tuple[str, str] | None = None,
        run_config: dict | None = None,
        repository: str = SINGLETON_REPOSITORY,
    ) -> str:
        """Materialize ``paths`` of ``location`` (its implicit asset job, as "Materialize"); the run id."""
        params = gql.asset_run_params(
            location, repository, paths, tags=tags, partition_range=partition_range, run_config=run_config
        )
        result = self.graphql(gql.LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        if failure := gql.launch_failure(result):
            raise DagsterClientError(f"launching {paths} in {location} failed ({failure})")
        return result["run"]["runId"]

    def runs(
        self,
        *,
        tags: dict[str, str] | None = None,
        run_ids: list[str] | None = None,
        statuses: Iterable[str] = (),
    ) -> list[dict]:
        """Runs (newest first): ``runId status creationTime startTime endTime tags assetSelection location``."""
        run_filter: dict[str, Any] = {}
        if statuses:
            run_filter["statuses"] = list(statuses)
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if run_ids:
            run_filter["runIds"] = run_ids
        data = self.graphql(gql.RUNS, {"filter": run_filter})["runsOrError"]
        if data["__typename"] != "Runs":
            raise DagsterClientError(f"runsOrError: {data.get('message')}")
        for run in data["results"]:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            run["assetSelection"] = [a["path"] for a in run["assetSelection"] or []]
            run["location"] = (run.pop("repositoryOrigin", None) or {}).get("repositoryLocationName")
        return data["results"]

    def wait_for_runs(self, run_ids: list[str], timeout: float = 900.0) -> dict[str, dict]:
        """Wait until every run has ended; the runs by id (see :meth:`runs`)."""
        done: dict[str, dict] = {}

        def probe() -> dict[str, dict] | None:
            pending = [r for r in run_ids if r not in done]
            for run in self.runs(run_ids=pending):
                if run["status"] in TERMINAL:
                    done[run["runId"]] = run
            return done if len(done) == len(run_ids) else None

        return self._wait(f"runs {sorted(set(run_ids) - set(done))} still not finished", timeout, probe)

    def wait_for_run(self, run_id: str, timeout: float = 900.0) -> dict:
        return self.wait_for_runs([run_id], timeout)[run_id]

    def run_errors(self, run_id: str) -> list[str]:
        """Why a run did not succeed: step failures with their causes, and failed blocking checks."""
        errors: list[str] = []
        cursor = None
        while True:
            data = self.graphql(gql.RUN_LOGS, {"runId": run_id, "after": cursor})["logsForRun"]
            if data["__typename"] != "EventConnection":
                return [f"{data['__typename']}: {data.get('message')}"]
            for event in data["events"]:
                kind = event["__typename"]
                if kind in ("ExecutionStepFailureEvent", "RunFailureEvent"):
                    error = event.get("error") or {}
                    text = (error.get("message") or event.get("message") or "").strip()
                    for cause in error.get("causes") or []:
                        text += f"\n  caused by: {cause['message'].strip()}"
                    step = f"{event['stepKey']}: " if event.get("stepKey") else ""
                    errors.append(f"{step}{text}")
                elif kind == "AssetCheckEvaluationEvent":
                    evaluation = event["evaluation"]
                    if not evaluation["success"] and evaluation["severity"] == "ERROR":
                        key = "/".join(evaluation["assetKey"]["path"])
                        detail = evaluation.get("description") or "see the check's metadata"
                        errors.append(f"check {key}:{evaluation['checkName']} failed: {detail}")
            cursor = data["cursor"]
            if not data["hasMore"]:
                return errors

    def outcome(self, launched: RunOutcome, run: dict) -> RunOutcome:
        """Fill a launched run's outcome from its finished record."""
        launched.status = run["status"]
        if run.get("startTime") and run.get("endTime"):
            launched.seconds = float(run["endTime"]) - float(run["startTime"])
        if run["status"] != "SUCCESS":
            launched.errors = self.run_errors(launched.run_id)
        return launched

    # ---- sensors -----------------------------------------------------------------------------
    def sensor_ticks(self, location: str, sensor: str, limit: int = 25) -> list[dict]:
        """The sensor's latest ticks, newest first: ``status timestamp skipReason runIds error``."""
        data = self.graphql(
            gql.SENSOR_TICKS,
            {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": SINGLETON_REPOSITORY,
                    "sensorName": sensor,
                },
                "limit": limit,
            },
        )["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise DagsterClientError(f"sensor {location}:{sensor}: {data.get('message')}")
        return data["sensorState"]["ticks"]
