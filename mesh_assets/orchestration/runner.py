"""Materialize the whole mesh the way the Dagster UI does, from a script.

``mesh demo`` and the end-to-end tests load ``workspace.yaml`` (every domain is its own code
location, served by its own gRPC process), read the cross-location asset graph and launch runs
through Dagster's GraphQL layer: the same mutation the UI's "Materialize" button sends. Runs
execute in their own processes through the instance's run launcher and are stored in the
persistent instance, so the UI shows them afterwards.

Code locations run in dependency order: a location runs once every location it consumes from
has succeeded; independent locations run concurrently.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from mesh_assets.orchestration.graphql import ASSET_NODES, LAUNCH_RUN, asset_run_params, launch_failure

TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


class MeshRunError(RuntimeError):
    """A code location failed to load or a run failed; the message carries Dagster's error."""


@dataclass(frozen=True)
class AssetNode:
    key: dg.AssetKey
    location: str
    repository: str
    deps: tuple[dg.AssetKey, ...]
    partition_keys: tuple[str, ...]
    partitions: str | None


@dataclass
class LaunchedRun:
    run_id: str
    location: str
    assets: tuple[dg.AssetKey, ...]
    partition_range: tuple[str, str] | None = None
    status: DagsterRunStatus | None = None
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class MeshWorkspace:
    """A loaded ``workspace.yaml``: its code locations, asset graph and a way to launch runs."""

    def __init__(
        self, workspace_file: Path, instance: dg.DagsterInstance, *, code_server_log_level: str = "INFO"
    ) -> None:
        self.workspace_file = workspace_file
        self.instance = instance
        self.code_server_log_level = code_server_log_level
        self._process: WorkspaceProcessContext | None = None

    def __enter__(self) -> MeshWorkspace:
        self._process = WorkspaceProcessContext(
            self.instance,
            WorkspaceFileTarget(paths=[str(self.workspace_file)]),
            code_server_log_level=self.code_server_log_level,
        )
        self._process.__enter__()
        errors = {
            name: entry.load_error
            for name, entry in self._process.create_request_context().get_code_location_entries().items()
            if entry.load_error
        }
        if errors:
            text = "\n".join(f"- {name}: {err.message.strip()}" for name, err in errors.items())
            self.__exit__(None, None, None)
            raise MeshRunError(f"code location(s) failed to load:\n{text}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.__exit__(*exc)  # type: ignore[arg-type]
            self._process = None

    # ---- GraphQL -------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._process is not None, "use MeshWorkspace as a context manager"
        result = asyncio.run(
            _graphql_schema().execute_async(
                query, context_value=self._process.create_request_context(), variable_values=variables
            )
        )
        if result.errors:
            raise MeshRunError("; ".join(str(e) for e in result.errors))
        return result.data  # type: ignore[return-value]

    @property
    def location_names(self) -> list[str]:
        assert self._process is not None
        return sorted(self._process.create_request_context().get_code_location_entries())

    def asset_nodes(self) -> list[AssetNode]:
        nodes = []
        for node in self.graphql(ASSET_NODES)["assetNodes"]:
            if not node["isMaterializable"]:
                continue
            nodes.append(
                AssetNode(
                    key=dg.AssetKey(node["assetKey"]["path"]),
                    location=node["repository"]["location"]["name"],
                    repository=node["repository"]["name"],
                    deps=tuple(dg.AssetKey(d["path"]) for d in node["dependencyKeys"]),
                    partition_keys=tuple(node["partitionKeys"]) if node["isPartitioned"] else (),
                    partitions=(node["partitionDefinition"] or {}).get("description")
                    if node["isPartitioned"]
                    else None,
                )
            )
        return nodes

    # ---- ordering ------------------------------------------------------------------------
    @staticmethod
    def location_layers(nodes: Sequence[AssetNode]) -> list[list[str]]:
        """Code locations in dependency order, as layers that may run concurrently."""
        owner = {n.key: n.location for n in nodes}
        needs: dict[str, set[str]] = defaultdict(set)
        for n in nodes:
            needs[n.location] |= {owner[d] for d in n.deps if d in owner and owner[d] != n.location}
        remaining = {n.location for n in nodes}
        layers: list[list[str]] = []
        while remaining:
            ready = sorted(loc for loc in remaining if not (needs[loc] & remaining))
            if not ready:
                raise MeshRunError(f"code locations depend on each other in a cycle: {sorted(remaining)}")
            layers.append(ready)
            remaining -= set(ready)
        return layers

    # ---- launching -----------------------------------------------------------------------
    def launch(
        self,
        location: str,
        repository: str,
        assets: Iterable[dg.AssetKey],
        *,
        partition_range: tuple[str, str] | None = None,
        tags: dict[str, str] | None = None,
        log_level: str = "INFO",
    ) -> LaunchedRun:
        assets = tuple(assets)
        params = asset_run_params(
            location,
            repository,
            [k.path for k in assets],
            tags=tags,
            partition_range=partition_range,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        result = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        if failure := launch_failure(result):
            raise MeshRunError(f"launching {location} failed ({failure})")
        return LaunchedRun(result["run"]["runId"], location, assets, partition_range)

    def wait(self, runs: Sequence[LaunchedRun], timeout: float = 900.0) -> None:
        started = time.monotonic()
        pending = {r.run_id: r for r in runs}
        while pending:
            for run_id, launched in list(pending.items()):
                run = self.instance.get_run_by_id(run_id)
                if run is not None and run.status in TERMINAL:
                    launched.status = run.status
                    stats = self.instance.get_run_stats(run_id)
                    if stats.start_time and stats.end_time:
                        launched.seconds = stats.end_time - stats.start_time
                    if run.status is not DagsterRunStatus.SUCCESS:
                        launched.errors = self.run_errors(run_id)
                    del pending[run_id]
            if pending and time.monotonic() - started > timeout:
                raise MeshRunError(f"runs still not finished after {timeout:.0f}s: {sorted(pending)}")
            if pending:
                time.sleep(0.25)

    def run_errors(self, run_id: str) -> list[str]:
        errors = []
        for record in self.instance.all_logs(run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
                error = getattr(event.event_specific_data, "error", None)
                step = f"{event.step_key}: " if event.step_key else ""
                message = error.message.strip() if error is not None else (record.user_message or "").strip()
                cause = error.cause if error is not None else None
                while cause is not None:
                    message += f"\n  caused by: {cause.message.strip()}"
                    cause = cause.cause
                errors.append(f"{step}{message}")
        return errors

    def materialize_all(
        self,
        *,
        locations: Sequence[str] | None = None,
        tags: dict[str, str] | None = None,
        timeout: float = 900.0,
        log_level: str = "INFO",
        on_layer: Callable[[list[LaunchedRun]], None] | None = None,
    ) -> list[LaunchedRun]:
        """Materialize every asset of ``locations`` (default all), location by location in dependency order.

        Within a location, unpartitioned assets share one run; each partitioning gets one run over
        its whole key range. Stops at the first layer with a failed run and raises with its errors.
        """
        nodes = self.asset_nodes()
        wanted = set(locations or {n.location for n in nodes})
        unknown = wanted - {n.location for n in nodes}
        if unknown:
            raise MeshRunError(f"no materializable assets in code location(s) {sorted(unknown)}")
        done: list[LaunchedRun] = []
        for layer in self.location_layers(nodes):
            launched = []
            for location in [loc for loc in layer if loc in wanted]:
                groups: dict[tuple[str, ...], list[AssetNode]] = defaultdict(list)
                for n in nodes:
                    if n.location == location:
                        groups[n.partition_keys].append(n)
                for keys, group in sorted(groups.items(), key=lambda item: len(item[0])):
                    launched.append(
                        self.launch(
                            location,
                            group[0].repository,
                            [n.key for n in group],
                            partition_range=(keys[0], keys[-1]) if keys else None,
                            tags=tags,
                            log_level=log_level,
                        )
                    )
            self.wait(launched, timeout=timeout)
            done.extend(launched)
            if on_layer:
                on_layer(launched)
            failed = [r for r in launched if r.status is not DagsterRunStatus.SUCCESS]
            if failed:
                text = "\n".join(
                    f"- run {r.run_id} ({r.location}): {r.status.value if r.status else '?'}\n    "
                    + "\n    ".join(r.errors or ["no error recorded"])
                    for r in failed
                )
                raise MeshRunError(f"materialization failed:\n{text}")
        return done


@functools.cache
def _graphql_schema() -> Any:
    """Dagster's GraphQL schema (the one the webserver serves), built once per process."""
    from dagster_graphql.schema import create_schema

    return create_schema()
