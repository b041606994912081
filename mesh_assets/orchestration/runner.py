"""Materialize the whole mesh the way the Dagster UI does, from a script.

``mesh demo`` and the end-to-end tests start the mesh's services (every domain its own code server,
see :mod:`~mesh_assets.orchestration.services`), read the cross-location asset graph and launch
runs through the webserver's GraphQL API (:class:`~mesh_assets.orchestration.client.DagsterClient`):
the same mutation the UI's "Materialize" button sends. Runs execute in their own processes and are
stored in the persistent instance, so the UI shows them afterwards.

Code locations run in dependency order: a location runs once every location it consumes from
has succeeded; independent locations run concurrently.

Some assets are not the runner's to launch: a legacy Airflow DAG's assets (tag
``mesh/airflow_dag``) run inside that DAG's runs, and a product reading what such a DAG publishes
waits until it has published once (:func:`waiting`). They are left out and reported, not failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mesh_assets.orchestration.client import DagsterClient, RunOutcome

AIRFLOW_DAG_TAG = "mesh/airflow_dag"  # set on a legacy DAG's assets by mesh_assets.airflow


class MeshRunError(RuntimeError):
    """A code location failed to load or a run failed; the message carries Dagster's error."""


@dataclass(frozen=True)
class AssetNode:
    path: tuple[str, ...]
    location: str
    repository: str
    deps: tuple[tuple[str, ...], ...]
    partition_keys: tuple[str, ...]
    partitions: str | None
    airflow_dag: str | None = None  # the legacy DAG whose runs materialize it
    published: bool = False  # materialized at least once

    @property
    def name(self) -> str:
        return "/".join(self.path)


def asset_nodes(client: DagsterClient) -> list[AssetNode]:
    """The assets the runner can materialize now, across locations, with their dependencies and
    partitions (:func:`plan` says which it leaves out, and why)."""
    return plan(client)[0]


def plan(client: DagsterClient) -> tuple[list[AssetNode], dict[tuple[str, ...], str]]:
    """The materializable assets the runner can run now, and those it leaves out with why."""
    raw = client.asset_nodes()
    published = {tuple(n["assetKey"]["path"]): bool(n["assetMaterializations"]) for n in raw}
    nodes = []
    for node in raw:
        if not node["isMaterializable"]:
            continue
        path = tuple(node["assetKey"]["path"])
        nodes.append(
            AssetNode(
                path=path,
                location=node["repository"]["location"]["name"],
                repository=node["repository"]["name"],
                deps=tuple(tuple(d["path"]) for d in node["dependencyKeys"]),
                partition_keys=tuple(node["partitionKeys"]) if node["isPartitioned"] else (),
                partitions=(node["partitionDefinition"] or {}).get("description")
                if node["isPartitioned"]
                else None,
                airflow_dag={t["key"]: t["value"] for t in node["tags"]}.get(AIRFLOW_DAG_TAG),
                published=published[path],
            )
        )
    left_out = waiting(nodes, published)
    return [n for n in nodes if n.path not in left_out], left_out


def waiting(
    nodes: Sequence[AssetNode], published: dict[tuple[str, ...], bool] | None = None
) -> dict[tuple[str, ...], str]:
    """The assets the runner leaves out, with why: a legacy Airflow DAG's assets (they run in the
    DAG's runs), and assets reading one of those, or an asset no location materializes, that has
    never been published (they run once it has, e.g. triggered by their domain's sensor)."""
    by_path = {n.path: n for n in nodes}
    known = {**{n.path: n.published for n in nodes}, **(published or {})}
    out: dict[tuple[str, ...], str] = {}
    seen: set[tuple[str, ...]] = set()

    def visit(node: AssetNode) -> None:
        if node.path in seen:
            return
        seen.add(node.path)
        for dep in node.deps:
            if dep in by_path:
                visit(by_path[dep])
        if node.airflow_dag:
            out[node.path] = f"runs in the Airflow DAG {node.airflow_dag}"
            return
        blocked = [
            "/".join(d) for d in node.deps if (d in out or d not in by_path) and not known.get(d, False)
        ]
        if blocked:
            out[node.path] = f"waits for the first publication of {', '.join(sorted(blocked))}"

    for node in nodes:
        visit(node)
    return out


def location_layers(nodes: Sequence[AssetNode]) -> list[list[str]]:
    """Code locations in dependency order, as layers that may run concurrently."""
    owner = {n.path: n.location for n in nodes}
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


def run_groups(nodes: Sequence[AssetNode]) -> list[list[list[AssetNode]]]:
    """The runs to launch, as layers: one run per (location, partitioning), after what it reads.

    Within a location, unpartitioned assets share one run and each partitioning gets one run over
    its whole key range. A run starts once every run holding an upstream asset of it has ended
    (a partitioned dbt model reading a product published by its location's other run must not start
    before that product passed its contract); runs that do not depend on each other share a layer.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[AssetNode]] = defaultdict(list)
    for n in nodes:
        groups[(n.location, n.partition_keys)].append(n)
    group_of = {n.path: key for key, members in groups.items() for n in members}
    needs = {
        key: {group_of[d] for n in members for d in n.deps if d in group_of} - {key}
        for key, members in groups.items()
    }
    remaining = set(groups)
    layers: list[list[list[AssetNode]]] = []
    while remaining:
        ready = sorted(
            (key for key in remaining if not (needs[key] & remaining)), key=lambda k: (k[0], len(k[1]))
        )
        if not ready:
            raise MeshRunError(f"runs depend on each other in a cycle: {sorted(k[0] for k in remaining)}")
        layers.append([groups[key] for key in ready])
        remaining -= set(ready)
    return layers


def materialize_all(
    client: DagsterClient,
    *,
    locations: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
    timeout: float = 900.0,
    log_level: str = "INFO",
    on_layer: Callable[[list[RunOutcome]], None] | None = None,
    nodes: Sequence[AssetNode] | None = None,
) -> list[RunOutcome]:
    """Materialize every asset of ``locations`` (default all), in dependency order (:func:`run_groups`).

    Stops at the first layer with a failed run and raises with its errors.
    """
    nodes = list(nodes if nodes is not None else asset_nodes(client))
    wanted = set(locations or {n.location for n in nodes})
    unknown = wanted - {n.location for n in nodes}
    if unknown:
        raise MeshRunError(f"no materializable assets in code location(s) {sorted(unknown)}")
    done: list[RunOutcome] = []
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    for layer in run_groups([n for n in nodes if n.location in wanted]):
        launched: list[RunOutcome] = []
        for group in layer:
            keys = group[0].partition_keys
            span = (keys[0], keys[-1]) if keys else None
            run_id = client.launch_assets(
                group[0].location,
                [list(n.path) for n in group],
                tags=tags,
                partition_range=span,
                run_config=run_config,
                repository=group[0].repository,
            )
            launched.append(RunOutcome(run_id, group[0].location, tuple(n.path for n in group), span))
        finished = client.wait_for_runs([r.run_id for r in launched], timeout=timeout)
        for run in launched:
            client.outcome(run, finished[run.run_id])
        done.extend(launched)
        if on_layer:
            on_layer(launched)
        failed = [r for r in launched if not r.succeeded]
        if failed:
            text = "\n".join(
                f"- run {r.run_id} ({r.location}): {r.status}\n    "
                + "\n    ".join(r.errors or ["no error recorded"])
                for r in failed
            )
            raise MeshRunError(f"materialization failed:\n{text}")
    return done
