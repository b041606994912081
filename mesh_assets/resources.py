"""The ``mesh`` resource: the platform's settings, as every code location's runs receive them.

Settings reach every part of a run through one resource, :class:`MeshResource`, resolved once when
the code location loads (``mesh_assets.definitions``) and shown in the UI like any resource config
(it holds no secret: credentials are read by :class:`~mesh_assets.settings.MeshSettings` from the
environment or the secret files when a connection is opened). The IO manager and the Trino
resource hold it as a nested resource, so a run never turns a profile name back into settings.
"""

from __future__ import annotations

import functools
from typing import Any

import dagster as dg

from mesh_assets.settings import MeshSettings


@functools.cache
def _settings(config: tuple[tuple[str, Any], ...]) -> MeshSettings:
    values = {k: dict(v) if k == "ports" else v for k, v in config}
    return MeshSettings.from_config(values)


class MeshResource(dg.ConfigurableResource):
    """The platform's settings as a resource: profile, paths, host and ports (never secrets)."""

    profile: str
    home: str
    raw_dir: str
    host: str
    ports: dict[str, int]
    s3_bucket: str
    trigger_interval: int
    openmetadata_url: str = ""
    # the domain whose runs these are (its own credentials in `lake`); empty for the platform
    principal: str = ""

    @classmethod
    def of(cls, settings: MeshSettings) -> MeshResource:
        return cls(**settings.to_config())

    @property
    def settings(self) -> MeshSettings:
        """The frozen settings (built once per process for the same config)."""
        config = {
            "profile": self.profile,
            "home": self.home,
            "raw_dir": self.raw_dir,
            "host": self.host,
            "ports": tuple(sorted(self.ports.items())),
            "s3_bucket": self.s3_bucket,
            "trigger_interval": self.trigger_interval,
            "openmetadata_url": self.openmetadata_url,
            "principal": self.principal,
        }
        return _settings(tuple(config.items()))
