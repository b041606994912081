"""``mesh``: the platform's command line. ``mesh --help`` is the map of what a user can do.

The CLI is an edge: each command resolves the settings once (``--profile`` over ``MESH_PROFILE``)
and passes them down; subprocesses get ``env=settings.process_env()``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
    # a domain that fails to load shows as failed in the UI; the others serve (fix it, `mesh deploy DOMAIN`)
    with DagsterServices(_settings(profile), webserver_port=port, allow_broken=True) as svc:
        for name, error in svc.broken.items():
            click.echo(f"code location {name} failed to load: {error.strip().splitlines()[-1]}", err=True)
        click.echo(
            f"Dagster UI on {svc.url} (profile {svc.profile.value}, instance {svc.dagster_home}, "
            f"logs {svc.log_dir}); `mesh deploy DOMAIN` redeploys one domain; Ctrl-C stops it"
        )
        try:
            while True:
                time.sleep(1)
                svc.check_alive()
        except KeyboardInterrupt:
            click.echo("stopping the Dagster services")


@main.command("new-domain")
@click.argument("name")
@click.option(
    "--owner", default=None, help="The owner's e-mail in the contracts (default <name>-owners@mesh.example)."
)
@click.option("--description", default=None, help="One sentence: what the domain's products are.")
@click.option(
    "--dbt",
    "with_dbt",
    is_flag=True,
    help="Also a dbt project, dbt_projects/NAME: a first mart and its contract.",
)
@click.option(
    "--no-check", is_flag=True, help="Do not load the new location, run its tests or record its snapshot."
)
def new_domain_command(
    name: str, owner: str | None, description: str | None, with_dbt: bool, no_check: bool
) -> None:
    """Create domains/NAME (package, first product and contract, tests, Helm values) and its code location.

    With --dbt, also dbt_projects/NAME: a staging model of the first product and a mart with its contract.

    The new domain loads, passes its contract and the test suite at once; nothing outside its folder
    is edited by hand (the command appends its entry to workspace.yaml and records its graph snapshot).
    """
    import subprocess

    from mesh_assets.scaffold.domain import ScaffoldError, new_domain

    try:
        made = new_domain(name, owner=owner, description=description, dbt=with_dbt)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    for path in made.files:
        click.echo(f"created {path.relative_to(REPO_ROOT)}")
    click.echo(f"added the code location {name} to workspace.yaml and its package to uv.lock")
    if with_dbt:
        from mesh_assets.dbt.prepare import prepare

        # the code location reads the manifest, built here as `mesh dbt prepare` builds it
        manifest = prepare(REPO_ROOT / "dbt_projects" / name, _settings(None))
        click.echo(f"prepared {manifest.relative_to(REPO_ROOT)}")
    if not no_check:
        python = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header"]
        node = f"tests/architecture/test_location_snapshots.py::test_code_location_graph_matches_its_snapshot[{name}]"
        for what, args in (
            ("recording its graph snapshot (tests/architecture)", [node, "--snapshot-update"]),
            ("running its own tests", [str(made.folder.relative_to(REPO_ROOT) / "tests")]),
        ):
            done = subprocess.run(
                [*python, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                click.echo(done.stdout[-4000:] + done.stderr[-2000:], err=True)
                raise click.ClickException(f"{what} failed for the new domain {name} (output above)")
            summary = [line for line in done.stdout.splitlines() if line.strip()][-1:]
            click.echo(f"{what}: {summary[0].strip('= ') if summary else 'done'}")
    click.echo(
        f"next: edit domains/{name}/assets.py and its contracts; `mesh ui` shows it, "
        f"`mesh deploy {name}` redeploys it under a running `mesh ui`, `mesh deploy render {name}` "
        "prints its Kubernetes release"
    )


@main.group()
def infra() -> None:
    """Local services: the lake stack (Ceph RADOS Gateway, PostgreSQL, Trino), a legacy Airflow, Kubernetes."""


# what `mesh infra` starts: the scripts under deploy/local/ (idempotent; ports from the settings)
INFRA = {"lake": "stack.sh", "airflow": "airflow.sh", "k8s": "k8s.sh"}
SERVICE = click.argument("service", type=click.Choice(sorted(INFRA)), default="lake")


def _infra(action: str, service: str) -> int:
    # the lake stack serves the lake profile; Airflow serves whichever profile is current
    settings = _settings("lake" if service == "lake" else None)
    if action == "up" and service == "lake":
        settings.ensure_secrets()  # Airflow's script generates its own credentials on first start
    script = REPO_ROOT / "deploy" / "local" / INFRA[service]
    started = time.monotonic()
    code = subprocess.call(["bash", str(script), action], env=settings.process_env())
    if action == "up" and code == 0:
        click.echo(f"{service} ready in {time.monotonic() - started:.0f}s")
    return code


@infra.command("up")
@SERVICE
def infra_up(service: str) -> None:
    """Install what is missing, start SERVICE (default lake) and wait until it is usable.

    \b
    lake     Ceph RADOS Gateway, PostgreSQL and Trino on loopback
    airflow  Airflow 2.11 (MESH_AIRFLOW_VERSION=3.x for Airflow 3) in its own venv, DAGs from airflow/dags
    k8s      a Kubernetes API server (etcd + kube-apiserver, no nodes) and helm, for deploy/k8s's charts
    """
    sys.exit(_infra("up", service))


@infra.command("down")
@SERVICE
def infra_down(service: str) -> None:
    """Stop SERVICE (default lake); data is kept."""
    sys.exit(_infra("down", service))


@infra.command("status")
@SERVICE
def infra_status(service: str) -> None:
    """Show SERVICE's state (default lake); exit non-zero unless it is healthy."""
    sys.exit(_infra("status", service))


@infra.command("reset")
@click.option("--yes", is_flag=True, help="Confirm: every table of the lake profile is deleted.")
def infra_reset(yes: bool) -> None:
    """Stop the lake stack and delete its data: the catalog, the warehouse and Trino's state together.

    The catalog (PostgreSQL) and the warehouse (Ceph) only make sense as a pair: the way back when one
    of them was lost or restored without the other. The next `mesh infra up` starts both empty.
    """
    if not yes:
        raise click.UsageError("this deletes every table of the lake profile: add --yes to confirm")
    sys.exit(_infra("reset", "lake"))


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


@main.group()
def access() -> None:
    """Who may read and write each product, from the contracts (readers, withheld columns, row filters)."""


@access.command("show")
def access_show() -> None:
    """Each product's readers as the contracts declare them, and what each may not see."""
    from mesh_assets.contracts.access import workspace_policy

    policy = workspace_policy(WORKSPACE)
    for _, product in sorted(policy.products.items()):
        click.echo(f"{product.name}  (owner domain:{product.owner}; {product.contract_label})")
        for grant in product.grants:
            limits = [f"withheld {list(grant.withheld)}"] if grant.withheld else []
            limits += [f"rows where {grant.row_filter}"] if grant.row_filter else []
            click.echo(f"    {grant.principal:<32} read{': ' + '; '.join(limits) if limits else ''}")


@access.command("trino-rules")
@PROFILE_OPTION
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (default: stdout)."
)
@click.option(
    "--admin",
    "admins",
    multiple=True,
    help="A user with every privilege (repeatable): the platform's own service user until runs act as domains.",
)
@click.option(
    "--monitor", "monitors", multiple=True, help="A user that may only list the catalog (a health check)."
)
def access_trino_rules(
    profile: str | None, out: Path | None, admins: tuple[str, ...], monitors: tuple[str, ...]
) -> None:
    """Trino's file-based access control rules (rules.json) generated from the contracts."""
    import json

    from mesh_assets.contracts.access import trino_rules, workspace_policy

    settings = _settings(profile)
    rules = trino_rules(
        workspace_policy(WORKSPACE),
        settings.trino_catalog,
        orchestrator=settings.trino_user,
        admins=admins,
        monitors=monitors,
    )
    text = json.dumps(rules, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)  # Trino re-reads the file on its refresh period: never show it half-written
    click.echo(f"wrote {out} ({len(rules['tables'])} table rules)")


@access.command("provision")
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="Provision only this domain (repeatable; default: every domain of the workspace).",
)
def access_provision(domains: tuple[str, ...]) -> None:
    """Give each domain its own principal in the lake: catalog role, object store user, rules.

    The lake stack runs this at every start. Each domain's runs then connect as mesh_<domain>: the
    catalog database refuses a write to another domain's namespace, and the bucket policy lets the
    domain's user write its own prefix and read only the products whose contracts list it.
    """
    from mesh_assets.contracts.access import workspace_policy
    from mesh_assets.lakehouse.principals import (
        ProvisioningError,
        provision,
        provision_instance_role,
        provision_object_store,
    )

    settings = _settings(Profile.LAKE.value)
    policy = workspace_policy(WORKSPACE)
    unknown = sorted(set(domains) - set(policy.domains))
    if unknown:
        raise click.UsageError(f"not a domain of {WORKSPACE}: {', '.join(unknown)}")
    names = list(domains) or list(policy.domains)
    reads = policy.domain_reads()
    try:
        # the Dagster instance's own role first: every Dagster process, a domain's too, holds it
        provision_instance_role(settings)
        roles = provision(settings, names)
        # the bucket policy names every domain of the workspace (one document for the bucket)
        provision_object_store(settings, list(policy.domains), reads)
    except ProvisioningError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"domain principals ready: {', '.join(roles)} (catalog roles and object store users; "
        f"credentials in {settings.secrets_dir / 'domains'}); the Dagster instance as {settings.pg_dagster_user}"
    )


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
    from mesh_assets.deploy.commands import deploy
    from mesh_assets.lineage.commands import lineage

    main.add_command(lineage)
    main.add_command(deploy)


_register_rooms()
