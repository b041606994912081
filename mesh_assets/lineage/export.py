"""``export_mesh``: the workspace's mesh into OpenMetadata (model -> SDK requests), idempotently.

The entry point of ``mesh lineage export`` and of the platform's export job. The server URL and
JWT token are arguments; the caller takes them from the settings (``MESH_OPENMETADATA_URL``,
``MESH_OPENMETADATA_TOKEN`` or ``$MESH_HOME/secrets/openmetadata_token``). The token is passed to
the SDK only, never logged or written anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh_assets.lineage.model import MeshModel, build_model
from mesh_assets.lineage.openmetadata import Exporter, ExportError, ExportReport, connect
from mesh_assets.settings import MeshSettings

__all__ = ["ExportError", "ExportReport", "export_mesh", "resolve_server", "state_file"]


def state_file(settings: MeshSettings) -> Path:
    """Where the hashes of what was last sent live (per profile; keyed inside by server URL)."""
    return settings.profile_home / "lineage" / "openmetadata-state.json"


def resolve_server(
    settings: MeshSettings, url: str | None = None, token: str | None = None
) -> tuple[str, str]:
    """The server URL and token: explicit arguments first, then the settings (URL field, secret)."""
    url = url or settings.openmetadata_url
    if not url:
        raise ExportError(
            "no OpenMetadata server is configured: pass --url or set MESH_OPENMETADATA_URL "
            "(e.g. http://127.0.0.1:8585)."
        )
    if token is None:
        try:
            token = settings.secret("openmetadata_token")
        except RuntimeError:
            raise ExportError(
                f"no token for OpenMetadata at {url}: export MESH_OPENMETADATA_TOKEN or write the bot's JWT "
                f"to {settings.secrets_dir / 'openmetadata_token'} (mode 0600)."
            ) from None
    return url, token


def export_mesh(
    settings: MeshSettings,
    workspace: Path | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    model: MeshModel | None = None,
    state_path: Path | None = None,
    full: bool = False,
    timeout: float = 30.0,
    instance: Any = None,
) -> ExportReport:
    """Export the mesh; send only what changed since the last export to the same server.

    ``instance`` (a ``dg.DagsterInstance``) supplies check results and run statuses; default: the
    instance of ``settings``. ``full`` ignores the recorded state (every request is sent again:
    still create-or-update).
    Raises :class:`ExportError` with one sentence naming the server, the entity and the reason.
    """
    url, token = resolve_server(settings, url, token)
    if model is None:
        model = build_model(settings, workspace, instance=instance)
    path = state_path if state_path is not None else state_file(settings)
    if full and path.is_file():
        path.unlink()
    client = connect(url, token, timeout=timeout)
    try:
        return Exporter(client, url, settings.trino_catalog, path).export(model)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
