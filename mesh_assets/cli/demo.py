"""``mesh demo``: the main job. Materializes the whole mesh and prints what it published."""

from __future__ import annotations

import time
from pathlib import Path

import click
import dagster as dg

from mesh_assets.orchestration.instance import prepare_dagster_home
from mesh_assets.orchestration.runner import MeshRunError, MeshWorkspace
from mesh_assets.settings import get_settings

SCORE_TABLE = "portfolio_alignment.portfolio_temperature_score"


def summarize(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> list[tuple[str, int | None, int | None]]:
    """(table, rows, snapshot id) from each asset's latest materialization."""
    rows = []
    for key in sorted(keys, key=lambda k: k.path):
        event = instance.get_latest_materialization_event(key)
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        total = metadata.get("iceberg/table_row_count") or metadata.get("dagster/row_count")
        snapshot = metadata.get("iceberg/snapshot_id")
        rows.append(
            (".".join(key.path), total.value if total else None, snapshot.value if snapshot else None)
        )
    return rows


def run_demo(workspace: Path, *, timeout: float = 900.0) -> int:
    settings = get_settings()
    home = prepare_dagster_home(settings)
    click.echo(f"mesh demo: profile {settings.profile.value}, warehouse {settings.warehouse}")
    click.echo(f"Dagster instance: {home}")
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        try:
            with MeshWorkspace(workspace, instance, code_server_log_level="WARNING") as mesh:
                nodes = mesh.asset_nodes()
                layers = mesh.location_layers(nodes)
                click.echo("order: " + "  ->  ".join(" + ".join(layer) for layer in layers))

                def progress(runs: list) -> None:
                    for run in runs:
                        span = (
                            f" partitions {run.partition_range[0]}..{run.partition_range[1]}"
                            if run.partition_range
                            else ""
                        )
                        click.echo(
                            f"  {run.location:<20} run {run.run_id[:8]} {run.status.value.lower():<8} "
                            f"{len(run.assets)} asset(s){span} ({run.seconds:.1f}s)"
                        )

                runs = mesh.materialize_all(
                    tags={"mesh/launched_by": "mesh demo"},
                    timeout=timeout,
                    log_level="WARNING",
                    on_layer=progress,
                )
        except MeshRunError as exc:
            click.secho(str(exc), fg="red", err=True)
            return 1
        elapsed = time.monotonic() - started
        click.echo(f"\n{len(runs)} runs succeeded in {elapsed:.1f}s\n")
        table = summarize(instance, [n.key for n in nodes])
    width = max(len(t) for t, _, _ in table)
    click.echo(f"{'table':<{width}}  {'rows':>7}  snapshot id")
    for name, rows, snapshot in table:
        click.echo(f"{name:<{width}}  {rows if rows is not None else '-':>7}  {snapshot or '-'}")
    click.echo("")
    click.echo(portfolio_line(settings))
    click.echo(
        "\nSee the runs and the lineage across domains: .venv/bin/mesh ui  (then http://"
        f"{settings.host}:{settings.ports.dagster_webserver})"
    )
    return 0


def portfolio_line(settings) -> str:
    from mesh_assets.lakehouse.catalog import load_catalog

    frame = load_catalog(settings).load_table(SCORE_TABLE).scan().to_pandas()
    if frame.empty:
        return "portfolio temperature score: (no rows)"
    first = frame.iloc[0]
    lines = [
        f"portfolio temperature score ({first['benchmark_id']}, scope {first['scope']}; "
        f"{first['n_holdings_data_based']} of {first['n_holdings']} holdings scored from data, "
        f"{first['coverage_value_share']:.0%} of value):"
    ]
    lines += [f"  {row.method:<16} {row.temperature_score_c:.2f} °C" for row in frame.itertuples()]
    return "\n".join(lines)
