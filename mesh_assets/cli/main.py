"""``mesh``: the platform's command line. ``mesh --help`` is the map of what a user can do.

The CLI is an edge: each command resolves the settings once (``--profile`` over ``MESH_PROFILE``)
and passes them down; subprocesses get ``env=settings.process_env()``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import click

from mesh_assets.settings import REPO_ROOT, MeshSettings, Profile, get_settings

WORKSPACE = REPO_ROOT / "workspace.yaml"
PROFILE_OPTION = click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=None,
    help="local: embedded SQLite catalog + warehouse folder (default). lake: PostgreSQL catalog + Ceph S3, queried by Trino.",
)


def _settings(profile: str | None) -> MeshSettings:
    try:
        return get_settings(profile)
    except ValueError as exc:  # a malformed MESH_* value: one sentence, no traceback
        raise click.UsageError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A data mesh on Dagster: domains publish Iceberg data products, the platform runs them."""


@main.command()
@PROFILE_OPTION
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for all runs.")
def demo(profile: str | None, timeout: float) -> None:
    """Materialize every domain in dependency order and print the tables and the portfolio score."""
    from mesh_assets.cli.demo import run_demo

    sys.exit(run_demo(WORKSPACE, _settings(profile), timeout=timeout))


@main.command()
@PROFILE_OPTION
@click.option(
    "--port", type=int, default=None, help="Web UI port (default: the dagster_webserver port setting)."
)
def ui(profile: str | None, port: int | None) -> None:
    """Open the Dagster UI on the whole mesh (all domains, the persistent instance of the profile)."""
    # one code server per domain, the webserver and the daemon (sensors, schedules, SLA freshness)
    import signal

    from mesh_assets.orchestration.services import DagsterServices

    def _terminate(signum, frame):  # a SIGTERM stops the services like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with DagsterServices(_settings(profile), webserver_port=port) as svc:
        click.echo(
            f"Dagster UI on {svc.url} (profile {svc.profile.value}, instance {svc.dagster_home}, "
            f"logs {svc.log_dir}); Ctrl-C stops it"
        )
        try:
            while True:
                time.sleep(1)
                svc.check_alive()
        except KeyboardInterrupt:
            click.echo("stopping the Dagster services")


@main.group()
def infra() -> None:
    """The local lake stack (Ceph RADOS Gateway, PostgreSQL, Trino) on loopback."""


def _stack(action: str) -> int:
    settings = _settings("lake")
    if action == "up":
        settings.ensure_secrets()
    env = settings.process_env()
    script = REPO_ROOT / "deploy" / "local" / "stack.sh"
    started = time.monotonic()
    code = subprocess.call(["bash", str(script), action], env=env)
    if action == "up" and code == 0:
        click.echo(f"lake stack ready in {time.monotonic() - started:.0f}s")
    return code


@infra.command("up")
def infra_up() -> None:
    """Install what is missing, start the services and wait until they are usable."""
    sys.exit(_stack("up"))


@infra.command("down")
def infra_down() -> None:
    """Stop the services (data is kept)."""
    sys.exit(_stack("down"))


@infra.command("status")
def infra_status() -> None:
    """Show each service's state; exit non-zero unless all are healthy."""
    sys.exit(_stack("status"))


@main.command()
@PROFILE_OPTION
def validate(profile: str | None) -> None:
    """Check every data product contract against the code and the last published data."""
    from mesh_assets.contracts.validate import validate as run_validate

    findings = run_validate(WORKSPACE, _settings(profile))
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        mark = click.style("ERROR", fg="red") if f.level == "error" else click.style("ok   ", fg="green")
        click.echo(f"{mark} {f.product:<48} {f.message}")
    products = {f.product for f in findings}
    click.echo(f"\n{len(products)} products checked, {len(errors)} error(s)")
    sys.exit(1 if errors else 0)


BENCHMARKS = {
    "io": "IO manager vs raw pyiceberg and dagster-iceberg: reads, appends, overwrites by history depth, memory",
    "load": "code location load time per domain vs `import dagster`, and the workspace",
    "trigger": "cross-domain trigger latency: upstream published -> downstream run created",
    "scale": "a synthetic mesh of N domains x M assets: workspace load, sensor ticks, memory, validate",
}


@main.command()
@click.argument("name", type=click.Choice(sorted(BENCHMARKS)))
@click.option("--quick", is_flag=True, help="Small sizes, for a smoke run (the figures are not meaningful).")
@PROFILE_OPTION
def bench(name: str, quick: bool, profile: str | None) -> None:
    """Run a benchmark and print its ratios against the baseline measured in the same run.

    \b
    io       IO manager vs raw pyiceberg and dagster-iceberg (reads, appends, overwrites, memory)
    load     code location load time per domain vs `import dagster`
    trigger  cross-domain trigger latency (upstream published -> downstream run)
    scale    synthetic mesh of N domains x M assets (load, sensor ticks, memory, validate)

    Benchmarks live in bench/ (not part of the platform library): this runs `python -m bench.<name>_bench`.
    """
    command = [sys.executable, "-m", f"bench.{name}_bench", *(["--quick"] if quick else [])]
    sys.exit(subprocess.call(command, cwd=REPO_ROOT, env=_settings(profile).process_env()))


@main.group()
def dbt() -> None:
    """The domains' dbt projects (dbt_projects/<domain>): prepare manifests, build docs."""


@dbt.command("prepare")
def dbt_prepare() -> None:
    """Parse every dbt project into its manifest (build/deploy time; code locations only read it)."""
    from mesh_assets.dbt.prepare import prepare_all

    for project_dir, seconds in prepare_all(_settings(None)):
        click.echo(f"prepared {project_dir.relative_to(REPO_ROOT)}/target/manifest.json ({seconds:.1f}s)")


@dbt.command("docs")
@click.argument("domain")
@PROFILE_OPTION
def dbt_docs(domain: str, profile: str | None) -> None:
    """Generate the dbt docs site of DOMAIN's project (run its models first for column types)."""
    from mesh_assets.dbt.prepare import generate_docs

    site = generate_docs(domain, _settings(profile))
    click.echo(f"dbt docs for {domain}: {site} (serve with `python -m http.server -d {site.parent}`)")


@main.command()
@PROFILE_OPTION
def settings(profile: str | None) -> None:
    """Show the resolved settings of a profile (never secrets)."""
    s = _settings(profile)
    click.echo(f"profile        {s.profile.value}")
    click.echo(f"home           {s.home}")
    click.echo(f"raw inputs     {s.raw_dir}")
    click.echo(f"catalog        {s.catalog_uri(with_password=False)}")
    click.echo(f"warehouse      {s.warehouse}")
    click.echo(f"dagster home   {s.dagster_home}")
    click.echo(f"openmetadata   {s.openmetadata_url or '(not set: MESH_OPENMETADATA_URL)'}")
    for name, port in s.ports.values.items():
        click.echo(f"port {name:<18}{s.host}:{port}")


def _register_rooms() -> None:
    """Command groups that live with their room of the platform (imported lazily by click)."""
    from mesh_assets.lineage.commands import lineage

    main.add_command(lineage)


_register_rooms()
