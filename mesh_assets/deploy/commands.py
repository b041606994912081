"""``mesh deploy``: one domain at a time, on this machine or as a Kubernetes release.

* ``mesh deploy DOMAIN`` replaces that domain's code server under the running ``mesh ui`` and
  reloads it (:mod:`mesh_assets.deploy.local`); ``mesh deploy --status`` lists each location's
  version and health;
* ``mesh deploy render|apply DOMAIN|platform`` renders, checks and applies Helm releases
  (:mod:`mesh_assets.deploy.k8s`).

Registered in ``mesh_assets/cli/main.py``. The deploy modules and the workspace (which import
Dagster) are imported inside the commands, so ``mesh --help`` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mesh_assets.settings import REPO_ROOT, MeshSettings, Profile, get_settings

if TYPE_CHECKING:
    from mesh_assets.deploy.k8s import Release

PLATFORM = "platform"


PROFILE = click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=None,
    help="The profile whose running services (`mesh ui --profile ...`) are deployed to.",
)
WORKSPACE_OPTION = click.option(
    "--workspace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=REPO_ROOT / "workspace.yaml",
    show_default=True,
    help="The workspace whose code locations are the domains.",
)


class _DeployGroup(click.Group):
    """``mesh deploy DOMAIN ...`` is ``mesh deploy local DOMAIN ...``: the everyday deploy is the short one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["local", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DeployGroup, invoke_without_command=True)
@click.option(
    "--status", is_flag=True, help="List each location: source and running version, memory, server, UI."
)
@PROFILE
@WORKSPACE_OPTION
@click.pass_context
def deploy(ctx: click.Context, status: bool, profile: str | None, workspace: Path) -> None:
    """Deploy one domain without touching the others.

    \b
    mesh deploy DOMAIN            replace DOMAIN's code server under the running `mesh ui`, reload it
    mesh deploy --status          each location's version (source and running), memory, server and UI state
    mesh deploy render DOMAIN     print DOMAIN's Kubernetes release, checked offline
    mesh deploy apply DOMAIN      helm upgrade --install of that one release
    """
    if ctx.invoked_subcommand is not None:
        return
    if not status:
        click.echo(ctx.get_help())
        return
    from mesh_assets.deploy.local import deploy_status
    from mesh_assets.workspace import locations

    rows = deploy_status(get_settings(profile), locations(workspace))
    click.echo(f"{'location':<22} {'source':<13} {'running':<13} {'pid':>7} {'MB':>5}  {'server':<13} ui")
    for row in rows:
        stale = (
            " (source changed: mesh deploy " + row.name + ")"
            if row.version and row.version != row.source_version
            else ""
        )
        click.echo(
            f"{row.name:<22} {row.source_version:<13} {row.version or '-':<13} {row.pid or '-':>7} "
            f"{'-' if row.rss_mb is None else f'{row.rss_mb:.0f}':>5}  "
            f"{row.server:<13} {row.ui or '-'}{stale}"
        )


@deploy.command("local")
@click.argument("domain")
@PROFILE
@click.option("--force", is_flag=True, help="Redeploy even if the running version is the source's.")
@click.option(
    "--drain-timeout",
    type=float,
    default=900.0,
    show_default=True,
    help="Seconds to wait for the domain's runs in flight before giving up (nothing replaced).",
)
def local_command(domain: str, profile: str | None, force: bool, drain_timeout: float) -> None:
    """Replace DOMAIN's code server under the running `mesh ui` (also: `mesh deploy DOMAIN`).

    Builds the domain's wheel (kept under DAGSTER_HOME/deploys/DOMAIN/VERSION/, the server runs
    it), checks that it loads (else the running version keeps serving), waits for its runs in
    flight, restarts its code server alone and reloads it in the UI; the other domains' servers and
    their runs are not touched. The daemon picks the new code up within a minute.
    """
    from mesh_assets.deploy.local import LocalDeployError, deploy_location

    try:
        done = deploy_location(
            get_settings(profile), domain, force=force, drain_timeout=drain_timeout, progress=click.echo
        )
    except LocalDeployError as exc:
        raise click.ClickException(str(exc)) from None
    if done.unchanged:
        click.echo(f"{domain}: version {done.version} already serving (pid {done.pid}); --force redeploys it")
        return
    steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in done.seconds.items())
    click.echo(
        f"{domain}: {done.previous} -> {done.version} ({done.image}, pid {done.pid}) in {done.total:.1f}s: {steps}"
    )
    if done.artifact:
        click.echo(f"  artifact {done.artifact}")
    for key in done.added:
        click.echo(f"  + {key}")
    for key in done.removed:
        click.echo(f"  - {key}")


def _release_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """DOMAIN|platform and the options every release command shares."""
    for decorator in reversed(
        [
            click.argument("target_name", metavar="DOMAIN|platform"),
            click.option(
                "--target",
                type=click.Choice(["k8s"]),
                default="k8s",
                show_default=True,
                help="Where it deploys.",
            ),
            click.option("--namespace", default="mesh", show_default=True, help="The Kubernetes namespace."),
            click.option(
                "--registry",
                default="mesh",
                show_default=True,
                help="Image registry/prefix: <registry>/<domain>:<version>.",
            ),
            click.option(
                "--profile",
                type=click.Choice([p.value for p in Profile]),
                default=None,
                help="Whose endpoints the release points at (the lake profile's services).",
            ),
            click.option(
                "--workspace",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=REPO_ROOT / "workspace.yaml",
                show_default=True,
            ),
        ]
    ):
        command = decorator(command)
    return command


def _checked(
    target_name: str, namespace: str, registry: str, profile: str | None, workspace: Path
) -> tuple[MeshSettings, Release, list[dict[str, Any]]]:
    """The release of DOMAIN|platform and its rendered objects; exits naming each invalid object."""
    from mesh_assets.deploy import k8s
    from mesh_assets.workspace import locations

    settings = get_settings(profile)
    known = {loc.name: loc for loc in locations(workspace)}
    if target_name == PLATFORM:
        # every location of the workspace (the platform's own included) has its code server release
        release = k8s.platform_release(settings, list(known.values()), registry=registry)
    elif target_name in known:
        release = k8s.domain_release(settings, known[target_name], registry=registry)
    else:
        raise click.UsageError(
            f"{target_name!r} is not a code location of {workspace}: choose one of {sorted(known)} or {PLATFORM!r}"
        )
    try:
        objects = k8s.render(k8s.find_helm(settings), release, namespace)
    except k8s.DeployError as exc:
        raise click.ClickException(str(exc)) from None
    problems = k8s.validate(objects)
    if problems:
        for problem in problems:
            click.echo(f"invalid: {problem}", err=True)
        sys.exit(1)
    return settings, release, objects


@deploy.command("render")
@_release_options
def render_command(
    target_name: str, target: str, namespace: str, registry: str, profile: str | None, workspace: Path
) -> None:
    """Print the objects a release would apply, after checking each against Kubernetes' strict schemas.

    DOMAIN is a code location of the workspace (its own release, mesh-<domain>); `platform` is the
    webserver, daemon and instance. Exits non-zero, naming each problem, when an object is invalid.
    No cluster is needed: helm renders and kubernetes-validate checks offline.
    """
    from mesh_assets.deploy import k8s

    _, release, objects = _checked(target_name, namespace, registry, profile, workspace)
    click.echo(k8s.to_yaml(objects), nl=False)
    click.echo(
        f"# {release.name}: {len(objects)} objects, valid for Kubernetes {k8s.SCHEMA_VERSION}", err=True
    )


@deploy.command("apply")
@_release_options
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The cluster (default: $KUBECONFIG, else the local API server of `mesh infra up k8s`).",
)
def apply_command(
    target_name: str,
    target: str,
    namespace: str,
    registry: str,
    profile: str | None,
    workspace: Path,
    kubeconfig: Path | None,
) -> None:
    """Install or upgrade one release (`helm upgrade --install`), only after its objects passed the check.

    A domain's release holds that domain's objects only: applying it leaves the platform and every
    other domain as they are. Secrets are not applied: the releases name them, created from your
    secret store: `mesh-lake-credentials` (the platform's), `mesh-instance-credentials` (every run),
    and per domain `mesh-<domain>-credentials` and `mesh-<domain>-principal` (deploy/k8s/README.md).
    """
    from mesh_assets.deploy import k8s

    settings, release, objects = _checked(target_name, namespace, registry, profile, workspace)
    config = kubeconfig or _default_kubeconfig(settings)
    started = time.monotonic()
    try:
        k8s.install(k8s.find_helm(settings), release, namespace, config)
    except k8s.DeployError as exc:
        raise click.ClickException(str(exc)) from None
    version = release.values.get("codeVersion") or release.values["image"]["tag"]
    click.echo(
        f"{release.name}: {len(objects)} objects applied to namespace {namespace} "
        f"(version {version}) in {time.monotonic() - started:.1f}s"
    )


def _default_kubeconfig(settings: MeshSettings) -> Path:
    path = Path(settings.environ.get("KUBECONFIG") or settings.services_dir / "k8s" / "kubeconfig")
    if not path.exists():
        raise click.UsageError(
            f"no kubeconfig at {path}: pass --kubeconfig, set KUBECONFIG or run `mesh infra up k8s`"
        )
    return path
