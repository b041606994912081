"""``mesh``: the platform's command line. ``mesh --help`` is the map of what a user can do."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from mesh_assets.settings import REPO_ROOT, Profile, get_settings

WORKSPACE = REPO_ROOT / "workspace.yaml"
PROFILE_OPTION = click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=None,
    help="local: embedded SQLite catalog + warehouse folder (default). lake: PostgreSQL catalog + Ceph S3, queried by Trino.",
)


def _use_profile(profile: str | None) -> None:
    if profile:
        os.environ["MESH_PROFILE"] = profile


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A data mesh on Dagster: domains publish Iceberg data products, the platform runs them."""


@main.command()
@PROFILE_OPTION
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for all runs.")
def demo(profile: str | None, timeout: float) -> None:
    """Materialize every domain in dependency order and print the tables and the portfolio score."""
    _use_profile(profile)
    from mesh_assets.cli.demo import run_demo

    sys.exit(run_demo(WORKSPACE, timeout=timeout))


@main.command()
@PROFILE_OPTION
@click.option(
    "--port", type=int, default=None, help="Web UI port (default: the dagster_webserver port setting)."
)
def ui(profile: str | None, port: int | None) -> None:
    """Open the Dagster UI on the whole mesh (all domains, the persistent instance of the profile)."""
    _use_profile(profile)
    # one code server per domain, the webserver and the daemon (sensors, schedules, SLA freshness)
    from mesh_assets.orchestration.services import main_ui

    sys.exit(main_ui(get_settings().profile.value, port))


@main.group()
def infra() -> None:
    """The local lake stack (Ceph RADOS Gateway, PostgreSQL, Trino) on loopback."""


def _stack(action: str) -> int:
    settings = get_settings("lake")
    if action == "up":
        settings.ensure_secrets()
    env = {**os.environ, **settings.shell_env()}
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
    _use_profile(profile)
    from mesh_assets.contracts.validate import validate as run_validate

    findings = run_validate(WORKSPACE, get_settings())
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        mark = click.style("ERROR", fg="red") if f.level == "error" else click.style("ok   ", fg="green")
        click.echo(f"{mark} {f.product:<48} {f.message}")
    products = {f.product for f in findings}
    click.echo(f"\n{len(products)} products checked, {len(errors)} error(s)")
    sys.exit(1 if errors else 0)


@main.command()
@click.argument("name", type=click.Choice(["io", "load", "trigger"]))
@click.option("--quick", is_flag=True, help="Small sizes, for a smoke run (the figures are not meaningful).")
def bench(name: str, quick: bool) -> None:
    """Run a benchmark and print its ratios against the baseline measured in the same run."""
    if name == "trigger":
        from bench import trigger_bench

        sys.exit(trigger_bench.main(quick=quick))
    if name == "load":
        from bench import load_bench

        sys.exit(load_bench.main(quick=quick))
    from bench import io_bench

    sys.exit(io_bench.main(quick=quick))


@main.group()
def dbt() -> None:
    """The domains' dbt projects (dbt_projects/<domain>): prepare manifests, build docs."""


@dbt.command("prepare")
def dbt_prepare() -> None:
    """Parse every dbt project into its manifest (build/deploy time; code locations only read it)."""
    from mesh_assets.dbt.prepare import prepare_all

    for project_dir, seconds in prepare_all():
        click.echo(f"prepared {project_dir.relative_to(REPO_ROOT)}/target/manifest.json ({seconds:.1f}s)")


@dbt.command("docs")
@click.argument("domain")
@PROFILE_OPTION
def dbt_docs(domain: str, profile: str | None) -> None:
    """Generate the dbt docs site of DOMAIN's project (run its models first for column types)."""
    _use_profile(profile)
    from mesh_assets.dbt.prepare import generate_docs

    site = generate_docs(domain, get_settings())
    click.echo(f"dbt docs for {domain}: {site} (serve with `python -m http.server -d {site.parent}`)")


@main.command()
@PROFILE_OPTION
def settings(profile: str | None) -> None:
    """Show the resolved settings of a profile (never secrets)."""
    _use_profile(profile)
    s = get_settings()
    click.echo(f"profile        {s.profile.value}")
    click.echo(f"home           {s.home}")
    click.echo(f"raw inputs     {s.raw_dir}")
    click.echo(f"catalog        {s.catalog_uri(with_password=False)}")
    click.echo(f"warehouse      {s.warehouse}")
    click.echo(f"dagster home   {s.dagster_home}")
    for name, port in s.ports.values.items():
        click.echo(f"port {name:<18}{s.host}:{port}")
