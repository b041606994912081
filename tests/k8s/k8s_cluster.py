"""The local Kubernetes API server the chart tests use (see conftest.py for its start)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mesh_assets.deploy import k8s
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import Location, locations

IN_CI = os.environ.get("CI", "").lower() == "true"
NAMESPACE = "mesh"
MESH = REPO_ROOT / ".venv" / "bin" / "mesh"
LOCATIONS = locations(REPO_ROOT / "workspace.yaml")


@dataclass(frozen=True)
class Cluster:
    settings: MeshSettings
    env: dict[str, str]

    @property
    def kubeconfig(self) -> Path:
        return self.settings.services_dir / "k8s" / "kubeconfig"

    @property
    def helm(self) -> Path:
        return self.settings.services_dir / "k8s" / "bin" / "helm"

    def mesh(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MESH), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def helm_cmd(self, *args: str, values: dict | None = None) -> subprocess.CompletedProcess[str]:
        """helm against this server (values as JSON on stdin)."""
        cmd = [str(self.helm), *args, "--kubeconfig", str(self.kubeconfig)]
        if values is not None:
            cmd += ["--values", "-"]
        return subprocess.run(
            cmd,
            input=json.dumps(values) if values is not None else None,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def api(self):
        """A kubernetes ApiClient for this server (the admin of the generated kubeconfig)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


def releases(cluster: Cluster, workspace_locations: list[Location]) -> list[k8s.Release]:
    """The platform release and one release per code location of the workspace."""
    return [
        k8s.platform_release(cluster.settings, workspace_locations),
        *(k8s.domain_release(cluster.settings, loc) for loc in workspace_locations),
    ]
