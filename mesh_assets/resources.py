"""The one environment helper: which resources a code location gets for the active profile."""

from __future__ import annotations

from typing import Any

from mesh_assets.ingest.raw import RawInputs
from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.lakehouse.trino import TrinoResource
from mesh_assets.settings import MeshSettings, get_settings


def resources_for(settings: MeshSettings | None = None) -> dict[str, Any]:
    """Resources by key for ``settings`` (default: the ``MESH_PROFILE`` of the environment).

    Only the profile name goes into resource config: credentials are resolved at run time from
    the environment, so they never show up in the UI or in run config.
    """
    settings = settings or get_settings()
    return {
        "io_manager": IcebergIOManager(profile=settings.profile.value),
        "raw": RawInputs(root=str(settings.raw_dir)),
        "trino": TrinoResource(profile=settings.profile.value),
    }
