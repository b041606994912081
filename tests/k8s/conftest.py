"""A real Kubernetes API server (etcd + kube-apiserver of deploy/local/k8s.sh, no nodes) for the charts.

One start per test run, on free loopback ports under a private MESH_HOME, so a developer's own
`mesh infra up k8s` is never touched. Under ``CI=true`` a server that cannot be built or started
fails the tests; elsewhere they skip with the script's error.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from k8s_cluster import IN_CI, LOCATIONS, NAMESPACE, Cluster, releases
from ports import free_ports

from mesh_assets.deploy import k8s
from mesh_assets.settings import REPO_ROOT, MeshSettings


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("k8s") / "mesh"
    k8s, etcd, peer = free_ports(3)
    settings = MeshSettings.from_env(
        "lake",
        environ={
            **{k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))},
            "MESH_HOME": str(home),
            "MESH_PORT_K8S": str(k8s),
            "MESH_PORT_ETCD": str(etcd),
            "MESH_PORT_ETCD_PEER": str(peer),
        },
    )
    env = settings.process_env()
    cluster = Cluster(settings, env)
    # started the way a user starts it; the first run on a machine builds kube-apiserver and helm
    up = cluster.mesh("infra", "up", "k8s", timeout=3600)
    if up.returncode:
        cluster.mesh("infra", "down", "k8s", timeout=120)
        message = f"the Kubernetes API server could not be built or started: {up.stderr.strip()[-2000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield cluster
    down = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/local/k8s.sh"), "down", "--purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stderr[-2000:]


@pytest.fixture(scope="session")
def installed(cluster: Cluster) -> Cluster:
    """Every release installed, each after a server-side dry-run (admission, schemas, RBAC)."""
    for release in releases(cluster, LOCATIONS):
        args = ["install", release.name, str(release.chart), "--namespace", NAMESPACE, "--create-namespace"]
        dry = cluster.helm_cmd(*args, "--dry-run=server", values=dict(release.values))
        assert dry.returncode == 0, dry.stderr
        k8s.install(cluster.helm, release, NAMESPACE, cluster.kubeconfig)
    return cluster
