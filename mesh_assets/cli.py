"""``mesh``: the platform's command line. ``mesh --help`` is the map of what a user can do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
    from mesh_assets.demo import run_demo

    sys.exit(run_demo(WORKSPACE, timeout=timeout))


@main.command()
@PROFILE_OPTION
@click.option(
    "--port", type=int, default=None, help="Web UI port (default: the dagster_webserver port setting)."
)
def ui(profile: str | None, port: int | None) -> None:
    """Open the Dagster UI on the whole mesh (all domains, the persistent instance of the profile)."""
    _use_profile(profile)
    from mesh_assets.instance import prepare_dagster_home

    settings = get_settings()
    prepare_dagster_home(settings)
    port = port or settings.ports.dagster_webserver
    click.echo(
        f"Dagster UI on http://{settings.host}:{port} (profile {settings.profile.value}); Ctrl-C stops it"
    )
    bin_dir = Path(sys.executable).parent
    os.execv(
        str(bin_dir / "dagster"),
        ["dagster", "dev", "-w", str(WORKSPACE), "-h", settings.host, "-p", str(port)],
    )


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
@click.argument("name", type=click.Choice(["io"]))
@click.option("--quick", is_flag=True, help="Small sizes, for a smoke run (the figures are not meaningful).")
def bench(name: str, quick: bool) -> None:
    """Run a benchmark and print its ratios against the baseline measured in the same run."""
    from bench import io_bench

    sys.exit(io_bench.main(quick=quick))


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
