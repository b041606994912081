"""``mesh deploy``: what a release of the platform or of one domain is, checked before it is applied.

Registered in ``mesh_assets/cli/main.py``. Helm, the charts and the schema check live in
:mod:`mesh_assets.deploy.k8s`, imported inside the commands so ``mesh --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mesh_assets.settings import REPO_ROOT, Profile, get_settings
from mesh_assets.workspace import locations

PLATFORM = "platform"


@click.group()
def deploy() -> None:
    """Releases: the shared Dagster services and each domain on its own (Kubernetes, Helm)."""


@deploy.command("render")
@click.argument("target_name", metavar="DOMAIN|platform")
@click.option(
    "--target", type=click.Choice(["k8s"]), default="k8s", show_default=True, help="Where it deploys."
)
@click.option("--namespace", default="mesh", show_default=True, help="The Kubernetes namespace.")
@click.option(
    "--registry",
    default="mesh",
    show_default=True,
    help="Image registry/prefix: <registry>/<domain>:<version>.",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=None,
    help="Whose endpoints the release points at (the lake profile's services).",
)
@click.option(
    "--workspace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=REPO_ROOT / "workspace.yaml",
    show_default=True,
)
def render_command(
    target_name: str, target: str, namespace: str, registry: str, profile: str | None, workspace: Path
) -> None:
    """Print the objects a release would apply, after checking each against Kubernetes' strict schemas.

    DOMAIN is a code location of the workspace (its own release, mesh-<domain>); `platform` is the
    webserver, daemon and instance. Exits non-zero, naming each problem, when an object is invalid.
    No cluster is needed: helm renders and kubernetes-validate checks offline.
    """
    from mesh_assets.deploy import k8s

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
    click.echo(k8s.to_yaml(objects), nl=False)
    if problems:
        for problem in problems:
            click.echo(f"invalid: {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"# {release.name}: {len(objects)} objects, valid for Kubernetes {k8s.SCHEMA_VERSION}", err=True
    )
