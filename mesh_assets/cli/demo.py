"""``mesh demo``: the main job. Materializes the whole mesh and prints what it published.

It starts the mesh's Dagster services (a code server per domain and a webserver on a free port,
no daemon), launches every location's runs in dependency order through GraphQL, as the UI would,
and prints one line per run, a table of every product (rows, snapshot) and the headline columns
each product's contract names (``customProperties: headline``). What the runs log goes to the
run logs in the UI and to the services' log files, not to this terminal.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import click

from mesh_assets.contracts.model import ProductContract, domain_contracts
from mesh_assets.orchestration.client import DagsterClientError, RunOutcome
from mesh_assets.orchestration.runner import MeshRunError, location_layers, materialize_all, plan
from mesh_assets.orchestration.services import DagsterServices, ServiceError
from mesh_assets.settings import MeshSettings
from mesh_assets.workspace import locations

HEADLINE_ROWS = 12


def _contracts(workspace: Path) -> dict[tuple[str, ...], ProductContract]:
    found: dict[tuple[str, ...], ProductContract] = {}
    for location in locations(workspace):
        spec = importlib.util.find_spec(location.module_name)
        if spec is None or spec.origin is None:
            continue
        for key, contract in domain_contracts(Path(spec.origin).parent / "contracts").items():
            found[tuple(key.path)] = contract
    return found


def _progress(runs: list[RunOutcome]) -> None:
    for run in runs:
        span = (
            f" partitions {run.partition_range[0]}..{run.partition_range[1]}" if run.partition_range else ""
        )
        click.echo(
            f"  {run.location:<20} run {run.run_id[:8]} {(run.status or '?').lower():<8} "
            f"{len(run.assets)} asset(s){span} ({run.seconds:.1f}s)"
        )


def _pivot(settings: MeshSettings, contract: ProductContract) -> list[str]:
    """The contract's headline cross table: ``rows`` x ``columns``, each cell its ``values`` joined."""
    from mesh_assets.lakehouse.catalog import read_table

    spec = contract.headline_pivot or {}
    rows_by, column_by, values = list(spec["rows"]), spec.get("columns"), list(spec["values"])
    name = ".".join(contract.key.path)
    table = read_table(settings, name, [*rows_by, *([column_by] if column_by else []), *values])
    if table is None or table.num_rows == 0:
        return [f"{name}: (no rows)"]
    cells: dict[tuple, dict[str, str]] = {}
    heads: list[str] = []
    for r in table.to_pylist():
        head = str(r[column_by]) if column_by else values[0]
        if head not in heads:
            heads.append(head)
        cells.setdefault(tuple(r[c] for c in rows_by), {})[head] = " / ".join(_fmt(r[v]) for v in values)
    left = [" ".join(_fmt(v) for v in key) for key in cells]
    lw = max(len(x) for x in [*left, " ".join(rows_by)])
    cw = {h: max(len(h), *(len(c.get(h, "-")) for c in cells.values())) for h in heads}
    lines = [f"{name} ({' / '.join(values)} by {column_by or 'value'}):"]
    lines.append("  " + f"{' '.join(rows_by):<{lw}}  " + "  ".join(f"{h:>{cw[h]}}" for h in heads))
    for label, row in zip(left, cells.values(), strict=True):
        lines.append("  " + f"{label:<{lw}}  " + "  ".join(f"{row.get(h, '-'):>{cw[h]}}" for h in heads))
    return lines


def _headline(settings: MeshSettings, contract: ProductContract) -> list[str]:
    from mesh_assets.lakehouse.catalog import read_table

    if contract.headline_pivot:
        return _pivot(settings, contract)
    name = ".".join(contract.key.path)
    table = read_table(settings, name, list(contract.headline))
    if table is None or table.num_rows == 0:
        return [f"{name}: (no rows)"]
    rows = table.to_pylist()
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows[:HEADLINE_ROWS])) for c in contract.headline}
    lines = [f"{name}:", "  " + "  ".join(f"{c:<{widths[c]}}" for c in contract.headline)]
    lines += [
        "  " + "  ".join(f"{_fmt(r[c]):<{widths[c]}}" for c in contract.headline)
        for r in rows[:HEADLINE_ROWS]
    ]
    if len(rows) > HEADLINE_ROWS:
        lines.append(f"  ... {len(rows) - HEADLINE_ROWS} more row(s)")
    return lines


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def run_demo(workspace: Path, settings: MeshSettings, *, timeout: float = 900.0) -> int:
    click.echo(f"mesh demo: profile {settings.profile.value}, warehouse {settings.warehouse}")
    started = time.monotonic()
    try:
        with DagsterServices(
            settings,
            daemon=False,
            webserver_port=0,
            workspace=workspace,
            log_dir=settings.profile_home / "logs" / "demo",
        ) as services:
            client = services.client
            nodes, left_out = plan(client)
            click.echo("order: " + "  ->  ".join(" + ".join(layer) for layer in location_layers(nodes)))
            if left_out:  # a legacy DAG's assets, and what waits for their first publication
                click.echo(
                    "not run: " + "; ".join(f"{'/'.join(p)} ({why})" for p, why in sorted(left_out.items()))
                )
            runs = materialize_all(
                client,
                tags={"mesh/launched_by": "mesh demo"},
                timeout=timeout,
                log_level="WARNING",
                on_layer=_progress,
                nodes=nodes,
            )
            latest = client.latest_materializations([list(n.path) for n in nodes])
    except (MeshRunError, ServiceError, DagsterClientError) as exc:
        click.secho(str(exc), fg="red", err=True)
        return 1
    click.echo(
        f"{len(runs)} runs succeeded in {time.monotonic() - started:.1f}s (logs: {services.log_dir})\n"
    )
    width = max(len(".".join(n.path)) for n in nodes)
    click.echo(f"{'table':<{width}}  {'rows':>7}  snapshot id")
    for path in sorted(latest):
        metadata = latest[path]
        rows = metadata.get("iceberg/table_row_count", metadata.get("dagster/row_count"))
        snapshot = metadata.get("iceberg/snapshot_id")
        click.echo(f"{'.'.join(path):<{width}}  {rows if rows is not None else '-':>7}  {snapshot or '-'}")
    for _path, contract in sorted(_contracts(workspace).items()):
        if contract.headline or contract.headline_pivot:
            click.echo("")
            for line in _headline(settings, contract):
                click.echo(line)
    click.echo(
        f"\nSee the runs and the lineage across domains: .venv/bin/mesh ui  (then http://"
        f"{settings.host}:{settings.ports.dagster_webserver})"
    )
    return 0
