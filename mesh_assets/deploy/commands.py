"""``mesh deploy``: a release of the platform or of one domain, checked before it is applied.

Registered in ``mesh_assets/cli/main.py``. Helm, the charts and the schema check live in
:mod:`mesh_assets.deploy.k8s`; it and the workspace (which imports Dagster) are imported inside the
commands, so ``mesh --help`` stays fast.
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


@click.group()
def deploy() -> None:
    """Releases: the shared Dagster services and each domain on its own (Kubernetes, Helm)."""


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
    other domain as they are. Secrets are not applied: the release names the Secret
    `mesh-lake-credentials`, created from your secret store.
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
