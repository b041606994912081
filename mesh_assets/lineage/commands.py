"""``mesh lineage``: publish the mesh to the catalog (OpenMetadata) from the command line.

Registered in ``mesh_assets/cli/main.py`` with ``main.add_command(lineage)``. The token is never an
option (it would land in shell history and process lists): it comes from the settings
(``MESH_OPENMETADATA_TOKEN`` or ``$MESH_HOME/secrets/openmetadata_token``).
"""

from __future__ import annotations

from pathlib import Path

import click

from mesh_assets.settings import REPO_ROOT, Profile, get_settings


@click.group()
def lineage() -> None:
    """The mesh in the catalog: domains, data products, contracts, quality and column lineage."""


@lineage.command("export")
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=None,
    help="Whose instance supplies check results and run statuses (default: MESH_PROFILE).",
)
@click.option(
    "--url",
    default=None,
    help="OpenMetadata server, e.g. http://127.0.0.1:8585 (default: MESH_OPENMETADATA_URL).",
)
@click.option(
    "--workspace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=REPO_ROOT / "workspace.yaml",
    show_default=True,
    help="The workspace whose code locations are exported.",
)
@click.option(
    "--full", is_flag=True, help="Send everything again, not only what changed since the last export."
)
@click.option(
    "--timeout", default=30.0, show_default=True, help="Seconds to wait for one answer of the server."
)
def export(profile: str | None, url: str | None, workspace: Path, full: bool, timeout: float) -> None:
    """Create or update every domain, product, table, column, owner, contract and lineage edge."""
    from mesh_assets.lineage.export import ExportError, export_mesh
    from mesh_assets.lineage.model import MeshModelError

    try:
        settings = get_settings(profile)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        report = export_mesh(settings, workspace, url=url, full=full, timeout=timeout)
    except (ExportError, MeshModelError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
