"""Cross-domain triggers: a domain's products refresh when a product it consumes is *published*.

For every code location, :func:`cross_domain_sensor` generates one sensor from the domain's
declared dependencies (``dg.AssetIn(key=[other_domain, name])``, the keys
:meth:`DomainGraph.consumed` computes). The sensor runs in the domain's own code
server and reads the instance's event log, which every code location shares, so it sees the
upstream domain's materializations whatever code location (or deployment) produced them. Why a
sensor and not declarative automation: ``docs/decisions/0003-cross-domain-triggers.md``.

Only published data triggers. Dagster records an asset's materialization as soon as the IO
manager has written it, which for a contract-governed product is the *audit branch*, before the
blocking ``contract`` check decides whether main moves (write-audit-publish). So the sensor
decides on a materialization only once the run that produced it has ended, and counts it as
published when every asset check planned for that asset in that run was evaluated and no blocking
check failed. A failed check, a run that failed before its checks, or a run still in progress
never triggers (the last one is decided on a later tick). A runless materialization (reported
from outside Dagster) has no checks and counts as published.

The sensor requests one run of the domain's assets that read the published products, plus what
depends on them inside the domain, plus any in-domain upstream never materialized (partitioned
ones get their own run: the latest time partition, or every static partition); it skips a
target already materialized after the upstream publication, and waits while another upstream
product of a target has never been published. Its cursor (the last decided event per upstream
product) is stored in the instance, keyed by location, repository and sensor name, so it survives
code location reloads and daemon restarts. Runs carry Dagster's ``dagster/sensor_name`` tag and
``mesh/trigger*`` tags naming the upstream products and runs.
"""

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster import DagsterEventType, EventLogRecord

TRIGGER_TAG = "mesh/trigger"
UPSTREAM_TAG = "mesh/trigger_upstream"
UPSTREAM_RUNS_TAG = "mesh/trigger_upstream_runs"
# materializations of one upstream product examined per tick (a backlog is worked off over ticks)
EVENTS_PER_TICK = 100

PUBLISHED, REJECTED, PENDING = "published", "rejected", "pending"


def sensor_name(domain: str) -> str:
    return f"{domain}__on_upstream_published"


@dataclass(frozen=True)
class Decision:
    state: str  # PUBLISHED, REJECTED or PENDING
    reason: str


def publication_state(instance: dg.DagsterInstance, record: EventLogRecord) -> Decision:
    """Whether a materialization is final and published (see the module docstring)."""
    entry = record.event_log_entry
    key = record.asset_key
    run_id = entry.run_id
    if not run_id:
        return Decision(PUBLISHED, "runless materialization")
    run = instance.get_run_by_id(run_id)
    if run is None:
        return Decision(REJECTED, f"run {run_id} no longer exists")
    if not run.is_finished:
        return Decision(PENDING, f"run {run_id} is {run.status.value}")
    records = instance.get_records_for_run(
        run_id,
        of_type={DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION},
    ).records
    planned: set[str] = set()
    evaluated: dict[str, dg.AssetCheckEvaluation] = {}
    for r in records:
        event = r.event_log_entry.dagster_event
        data = event.event_specific_data if event is not None else None
        if event is None or data is None or getattr(data, "asset_key", None) != key:
            continue
        if isinstance(data, dg.AssetCheckEvaluation):
            evaluated[data.check_name] = data
        elif event.event_type is DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            planned.add(str(getattr(data, "check_name", "")))
    missing = sorted(planned - set(evaluated))
    if missing:
        return Decision(REJECTED, f"check(s) {missing} never evaluated in run {run_id} ({run.status.value})")
    failed = sorted(
        name
        for name, ev in evaluated.items()
        if not ev.passed
        and (ev.blocking or (ev.blocking is None and ev.severity == dg.AssetCheckSeverity.ERROR))
    )
    if failed:
        return Decision(REJECTED, f"blocking check(s) {failed} failed in run {run_id}")
    return Decision(
        PUBLISHED, f"run {run_id} {run.status.value}, checks {sorted(evaluated) or 'none'} passed"
    )


# A run in any other status may still materialize what it planned (RunRecord.dagster_run.is_finished).
_FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


class _Instance:
    """Per-tick cached reads of the instance."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._runs: dict[str, dg.RunRecord | None] = {}
        self._latest: dict[dg.AssetKey, EventLogRecord | None] = {}
        self._unfinished: bool | None = None

    def prefetch_latest(self, keys: Iterable[dg.AssetKey]) -> None:
        """Each key's latest materialization, in one read of the asset index (see ``latest``)."""
        wanted = [key for key in keys if key not in self._latest]
        if not wanted:
            return
        found = {r.asset_entry.asset_key: r.asset_entry for r in self.instance.get_asset_records(wanted)}
        for key in wanted:
            entry = found.get(key)
            self._latest[key] = entry.last_materialization_record if entry is not None else None

    def any_unfinished_run(self) -> bool:
        """Whether any run at all is unfinished: when none is, no asset can be in progress."""
        if self._unfinished is None:
            statuses = [s for s in dg.DagsterRunStatus if s not in _FINISHED]
            self._unfinished = bool(
                self.instance.get_run_records(filters=dg.RunsFilter(statuses=statuses), limit=1)
            )
        return self._unfinished

    def run_record(self, run_id: str) -> dg.RunRecord | None:
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_record_by_id(run_id)
        return self._runs[run_id]

    def in_progress(self, key: dg.AssetKey) -> str | None:
        """The id of an unfinished run that plans to materialize ``key``, if any."""
        if not self.any_unfinished_run():
            return None
        info = self.instance.get_latest_planned_materialization_info(key)
        if info is None:
            return None
        record = self.run_record(info.run_id)
        return info.run_id if record is not None and not record.dagster_run.is_finished else None

    def latest(self, key: dg.AssetKey) -> EventLogRecord | None:
        if key not in self._latest:
            records = self.instance.fetch_materializations(key, limit=1).records
            self._latest[key] = records[0] if records else None
        return self._latest[key]

    def ever_published(self, key: dg.AssetKey, depth: int = 20) -> bool:
        for record in self.instance.fetch_materializations(key, limit=depth).records:
            if publication_state(self.instance, record).state == PUBLISHED:
                return True
        return False

    def published_at(self, record: EventLogRecord) -> float:
        """When the materialization became final: its run's end, or the event for a runless one."""
        run_id = record.event_log_entry.run_id
        run = self.run_record(run_id) if run_id else None
        return run.end_time if run is not None and run.end_time else record.timestamp

    def read_before(self, target: dg.AssetKey, published_at: float) -> bool:
        """Whether ``target``'s latest materialization may predate (not include) a publication."""
        latest = self.latest(target)
        if latest is None:
            return True
        run_id = latest.event_log_entry.run_id
        run = self.run_record(run_id) if run_id else None
        started = run.create_timestamp.timestamp() if run is not None else latest.timestamp
        return started < published_at


@dataclass(frozen=True)
class DomainGraph:
    """What the sensor needs of the domain's asset graph, computed when the code location loads."""

    local: frozenset[dg.AssetKey]
    deps: Mapping[dg.AssetKey, frozenset[dg.AssetKey]]  # local asset -> every upstream key
    partitioned: frozenset[dg.AssetKey]
    partitions: Mapping[dg.AssetKey, dg.PartitionsDefinition] = field(default_factory=dict)

    @classmethod
    def of(cls, assets: Sequence[dg.AssetsDefinition]) -> "DomainGraph":
        deps = {key: frozenset(upstream) for a in assets for key, upstream in a.asset_deps.items()}
        partitions = {key: a.partitions_def for a in assets if a.partitions_def is not None for key in a.keys}
        return cls(frozenset(deps), deps, frozenset(partitions), partitions)

    def consumed(self) -> list[dg.AssetKey]:
        return sorted({d for ds in self.deps.values() for d in ds} - self.local, key=lambda k: tuple(k.path))

    def readers(self, upstream: dg.AssetKey) -> set[dg.AssetKey]:
        return {key for key, ds in self.deps.items() if upstream in ds}

    def downstream(self, keys: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
        out, todo = set(keys), list(keys)
        while todo:
            current = todo.pop()
            for key in self.readers(current) - out:
                out.add(key)
                todo.append(key)
        return out

    def upstream(self, keys: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
        out, todo = set(), list(keys)
        while todo:
            for dep in self.deps.get(todo.pop(), frozenset()):
                if dep not in out:
                    out.add(dep)
                    todo.append(dep)
        return out


def _cursor_key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def evaluate(
    context: dg.SensorEvaluationContext, domain: str, graph: DomainGraph
) -> dg.SensorResult | dg.SkipReason:
    """One tick: decide on new upstream materializations, request a run of what they make stale."""
    instance = context.instance
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    published: dict[dg.AssetKey, EventLogRecord] = {}
    notes: list[str] = []
    cache = _Instance(instance)
    consumed = graph.consumed()
    # A tick's common case is that nothing was published since the last one: one read of the
    # asset index for every product the domain reads, not one event-log query per product,
    # keeps an idle tick's cost in the number of sensors (``mesh bench scale``).
    cache.prefetch_latest(consumed)
    for upstream in consumed:
        after = cursor.get(_cursor_key(upstream))
        newest = cache.latest(upstream)
        if newest is None or (after is not None and newest.storage_id <= after):
            continue  # never materialized, or nothing since the cursor: no read of its events
        if after is None:
            # first tick for this product: consider only its latest materialization, not history
            records = list(instance.fetch_materializations(upstream, limit=1).records)
        else:
            records = list(
                instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=upstream, after_storage_id=after),
                    limit=EVENTS_PER_TICK,
                    ascending=True,
                ).records
            )
        decisions: dict[str, Decision] = {}
        for record in records:
            run_id = record.event_log_entry.run_id
            decision = decisions.get(run_id) if run_id else None
            if decision is None:
                decision = publication_state(instance, record)
                if run_id:
                    decisions[run_id] = decision
            if decision.state == PENDING:
                notes.append(f"{upstream.to_user_string()}: waiting, {decision.reason}")
                break
            cursor[_cursor_key(upstream)] = record.storage_id
            if decision.state == PUBLISHED:
                published[upstream] = record
            else:
                notes.append(f"{upstream.to_user_string()}: not published, {decision.reason}")
                context.log.info(
                    f"{upstream.to_user_string()} materialization not published: {decision.reason}"
                )

    # targets: readers of a published product whose latest materialization did not read it
    stale: set[dg.AssetKey] = set()
    causes: dict[dg.AssetKey, EventLogRecord] = {}
    cache.prefetch_latest(target for upstream in published for target in graph.readers(upstream))
    for upstream, record in published.items():
        published_at = cache.published_at(record)
        for target in graph.readers(upstream):
            if cache.read_before(target, published_at):
                stale.add(target)
                causes[upstream] = record
    selection = graph.downstream(stale)
    # in-domain upstream never materialized joins the run; another domain's must be published first
    cache.prefetch_latest(dep for dep in graph.upstream(selection) if dep in graph.local)
    for dep in graph.upstream(selection):
        if dep in graph.local and cache.latest(dep) is None:
            selection.add(dep)
    if selection:
        # Like eager automation: while a target or one of its inputs is being refreshed, decide
        # nothing (the cursor stays) and look again next tick, so one run takes every update.
        busy = {
            key.to_user_string(): run_id
            for key in sorted(selection | graph.upstream(selection), key=lambda k: tuple(k.path))
            if (run_id := cache.in_progress(key))
        }
        if busy:
            return dg.SkipReason(
                f"waiting: {', '.join(f'{k} (run {r})' for k, r in busy.items())} in progress; "
                + "; ".join(notes)
            )
    missing = sorted(
        dep.to_user_string()
        for dep in graph.upstream(selection)
        if dep not in graph.local and not cache.ever_published(dep)
    )
    new_cursor = json.dumps(cursor, sort_keys=True)
    if selection and missing:
        notes.append(f"waiting for the first publication of {missing}")
        selection = set()
    if not selection:
        context.update_cursor(new_cursor)
        return dg.SkipReason("; ".join(notes) or "no new published upstream product")
    upstream_runs = sorted({r.event_log_entry.run_id for r in causes.values() if r.event_log_entry.run_id})
    run_key = ",".join(f"{k.to_user_string()}@{r.storage_id}" for k, r in sorted(causes.items()))
    tags = {
        TRIGGER_TAG: "cross-domain",
        UPSTREAM_TAG: ", ".join(k.to_user_string() for k in sorted(causes)),
    }
    if upstream_runs:
        tags[UPSTREAM_RUNS_TAG] = ", ".join(upstream_runs)[:4000]
    context.log.info(
        f"{domain}: refreshing {sorted(k.to_user_string() for k in selection)} after publication of "
        f"{tags[UPSTREAM_TAG]}"
    )
    return dg.SensorResult(
        run_requests=_run_requests(context, graph, selection, run_key, tags, notes), cursor=new_cursor
    )


def _run_requests(
    context: dg.SensorEvaluationContext,
    graph: DomainGraph,
    selection: set[dg.AssetKey],
    run_key: str,
    tags: dict[str, str],
    notes: list[str],
) -> list[dg.RunRequest]:
    """One run for the unpartitioned targets; one per partitioning for the partitioned ones.

    As ``AutomationCondition.eager()``: a time-partitioned target refreshes its latest partition;
    a statically partitioned one refreshes all its partitions (one run over the key range).
    """
    by_key = functools.partial(sorted, key=lambda k: tuple(k.path))
    plain = selection - graph.partitioned
    requests = [dg.RunRequest(run_key=run_key, asset_selection=by_key(plain), tags=tags)] if plain else []
    groups: list[tuple[dg.PartitionsDefinition, list[dg.AssetKey]]] = []
    for key in by_key(selection & graph.partitioned):
        group = next((g for g in groups if g[0] == graph.partitions[key]), None)
        if group is None:
            groups.append(group := (graph.partitions[key], []))
        group[1].append(key)
    for partitions_def, keys in groups:
        if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            last = partitions_def.get_last_partition_key()
            if last is not None:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{run_key}|{last}", asset_selection=keys, partition_key=last, tags=tags
                    )
                )
                continue
        elif isinstance(partitions_def, dg.StaticPartitionsDefinition):
            all_keys = partitions_def.get_partition_keys()
            requests.append(
                dg.RunRequest(
                    run_key=f"{run_key}|{all_keys[0]}..{all_keys[-1]}",
                    asset_selection=keys,
                    tags={
                        **tags,
                        "dagster/asset_partition_range_start": all_keys[0],
                        "dagster/asset_partition_range_end": all_keys[-1],
                    },
                )
            )
            continue
        notes.append(f"not triggered (partitioning not supported): {[k.to_user_string() for k in keys]}")
        context.log.warning(notes[-1])
    return requests


def cross_domain_sensor(domain: str, graph: DomainGraph, interval: int) -> dg.SensorDefinition | None:
    """The domain's trigger on published products of other domains (None if it consumes none)."""
    consumed = graph.consumed()
    if not consumed:
        return None
    names = ", ".join(k.to_user_string() for k in consumed)

    def _evaluate(context: dg.SensorEvaluationContext):
        return evaluate(context, domain, graph)

    return dg.SensorDefinition(
        name=sensor_name(domain),
        evaluation_fn=_evaluate,
        minimum_interval_seconds=interval,
        description=(
            f"Refreshes {domain}'s products when a product it reads from another domain is published "
            f"(its run ended and its blocking contract check passed): {names}. Every {interval} s at most "
            "(MESH_TRIGGER_INTERVAL)."
        ),
        target=dg.AssetSelection.assets(*sorted(graph.local, key=lambda k: tuple(k.path))),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )


def domain_sensors(domain: str, graph: DomainGraph, interval: int) -> list[dg.SensorDefinition]:
    sensor = cross_domain_sensor(domain, graph, interval)
    return [sensor] if sensor is not None else []
