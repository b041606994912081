"""Export to the catalog after each publication, in a run of its own.

``lineage_definitions(settings)`` gives the platform a job and a sensor. The sensor reads the
instance's materializations (every code location shares the instance) and, once one is *published*
(its run ended and no blocking check failed: :func:`mesh_assets.orchestration.automation.publication_state`,
the rule the cross-domain triggers use), requests one run of the export job. The producing run is
never slowed or failed by the catalog: the export runs later, in its own run. When the catalog is
unreachable or refuses a request, the export step says so in its run's log and retries after a
wait (Dagster step retries); after the last retry only the export run fails, and the next
publication requests a new one.
"""

from pathlib import Path

import dagster as dg

from mesh_assets.settings import MeshSettings

JOB_NAME = "mesh_lineage_export"
SENSOR_NAME = "mesh_lineage_on_publish"
TRIGGER_TAG = "mesh/lineage_trigger"
EVENTS_PER_TICK = 200


def _export_job(
    settings: MeshSettings,
    workspace: Path | None,
    url: str | None,
    max_retries: int,
    retry_wait: float,
) -> dg.JobDefinition:
    @dg.op(name="export_to_openmetadata")
    def export_op(context: dg.OpExecutionContext) -> dg.Output:
        """Export the whole mesh; only what changed since the last export is sent."""
        from mesh_assets.lineage.export import ExportError, export_mesh

        try:
            report = export_mesh(settings, workspace, url=url, instance=context.instance)
        except ExportError as exc:
            attempt = context.retry_number + 1
            if attempt <= max_retries:
                context.log.warning(
                    f"{exc} The catalog export will retry in {retry_wait:.0f} s (retry {attempt} of "
                    f"{max_retries}); the mesh's own runs are not affected."
                )
                raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=retry_wait) from exc
            context.log.error(f"{exc} No retry left; the next publication requests a new export.")
            raise
        context.log.info(report.summary())
        return dg.Output(
            None,
            metadata={
                "server": report.server,
                "changes_sent": report.sent,
                "unchanged": report.unchanged,
                "seconds": round(report.seconds, 2),
                **{f"sent/{k}": v for k, v in sorted(report.by_kind.items())},
            },
        )

    @dg.job(
        name=JOB_NAME,
        description="Publishes the mesh to OpenMetadata (domains, products, contracts, quality, lineage).",
        executor_def=dg.in_process_executor,
        tags={"mesh/kind": "catalog-export"},
    )
    def export_job() -> None:
        export_op()

    return export_job


def _sensor(
    settings: MeshSettings, job: dg.JobDefinition, url: str | None, interval: int
) -> dg.SensorDefinition:
    from mesh_assets.orchestration.automation import PENDING, PUBLISHED, publication_state

    def evaluate(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        from mesh_assets.lineage.export import ExportError, resolve_server

        try:
            resolve_server(settings, url)
        except ExportError as exc:
            return dg.SkipReason(str(exc))
        instance = context.instance
        materialized = dg.DagsterEventType.ASSET_MATERIALIZATION
        if context.cursor is None:
            # first tick: decide on the latest materialization only, not the whole history
            records = list(
                instance.get_event_records(dg.EventRecordsFilter(event_type=materialized), limit=1)
            )
        else:
            records = list(
                instance.get_event_records(
                    dg.EventRecordsFilter(event_type=materialized, after_cursor=int(context.cursor)),
                    limit=EVENTS_PER_TICK,
                    ascending=True,
                )
            )
        cursor = int(context.cursor) if context.cursor else 0
        published: list[str] = []
        waiting = ""
        for record in records:
            asset_key = record.asset_key
            if asset_key is None:  # a materialization always names its asset: nothing to decide
                cursor = record.storage_id
                continue
            decision = publication_state(instance, record)
            if decision.state == PENDING:
                waiting = f"; waiting for {asset_key.to_user_string()}: {decision.reason}"
                break
            cursor = record.storage_id
            if decision.state == PUBLISHED:
                published.append(asset_key.to_user_string())
        if not published:
            context.update_cursor(str(cursor) if cursor else context.cursor)
            return dg.SkipReason("no new published product" + waiting)
        keys = ", ".join(sorted(set(published)))
        context.log.info(f"exporting to the catalog after the publication of {keys}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"published@{cursor}", tags={TRIGGER_TAG: keys[:4000]})],
            cursor=str(cursor),
        )

    return dg.SensorDefinition(
        name=SENSOR_NAME,
        evaluation_fn=evaluate,
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Exports the mesh to OpenMetadata in a run of its own after a product is published (its run "
            "ended and its blocking checks passed)."
        ),
    )


def lineage_definitions(
    settings: MeshSettings,
    *,
    workspace: Path | None = None,
    url: str | None = None,
    interval: int = 30,
    max_retries: int = 3,
    retry_wait: float = 60.0,
) -> dg.Definitions:
    """The export job and its sensor, for the platform's code location (merge with ``dg.Definitions.merge``)."""
    job = _export_job(settings, workspace, url, max_retries, retry_wait)
    return dg.Definitions(jobs=[job], sensors=[_sensor(settings, job, url, interval)])
