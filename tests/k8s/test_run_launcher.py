"""K8sRunLauncher, configured by the platform chart, starts each domain's run as a Job in its image.

Each domain's code server runs here as a real process with the environment its release gives it
(``DAGSTER_CURRENT_IMAGE``, ``DAGSTER_CONTAINER_CONTEXT``, read from the rendered Deployment), and
``dagster job launch`` uses the instance config the platform release renders, pointed at the local
API server. No kubelet runs, so the Job never starts a pod: the test reads the Job the server stored.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from k8s_cluster import NAMESPACE, Cluster
from kubernetes import client
from ports import free_ports

from mesh_assets.deploy import k8s
from mesh_assets.settings import REPO_ROOT
from mesh_assets.workspace import Location, locations

DAGSTER = REPO_ROOT / ".venv" / "bin" / "dagster"
DOMAINS = [loc for loc in locations(REPO_ROOT / "workspace.yaml") if loc.module_name.startswith("domains.")]
SERVER_START_TIMEOUT = 300


def _container(objects: list[dict], kind: str = "Deployment") -> dict:
    [obj] = [o for o in objects if o["kind"] == kind]
    [container] = obj["spec"]["template"]["spec"]["containers"]
    return container


def _wait_for_server(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code server on {port} exited: {log.read_text()[-3000:]}")
        check = subprocess.run(
            [str(DAGSTER), "api", "grpc-health-check", "--port", str(port)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if check.returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"code server on {port} not serving after {SERVER_START_TIMEOUT}s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def code_servers(installed: Cluster, tmp_path_factory) -> Iterator[dict[str, int]]:
    """One real code server per domain, with the env its rendered release gives it."""
    tmp = tmp_path_factory.mktemp("code-servers")
    base_env = {k: v for k, v in installed.env.items() if not k.startswith("DAGSTER_")}
    base_env["MESH_PROFILE"] = "local"  # loading definitions needs no lake; the Job is what is checked
    started: dict[str, tuple[int, subprocess.Popen]] = {}
    try:
        for loc, port in zip(DOMAINS, free_ports(len(DOMAINS)), strict=True):
            container = _container(
                k8s.render(installed.helm, k8s.domain_release(installed.settings, loc), NAMESPACE)
            )
            env = {e["name"]: e["value"] for e in container["env"]}
            log = tmp / f"{loc.name}.log"
            proc = subprocess.Popen(
                [
                    *(str(DAGSTER), "code-server", "start", "--host", "127.0.0.1", "--port", str(port)),
                    *("--module-name", loc.module_name, "--location-name", loc.name),
                ],
                env={**base_env, **env},
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,  # its own process group: the code process stops with it
            )
            started[loc.name] = (port, proc)
        for name, (port, proc) in started.items():
            _wait_for_server(port, proc, tmp / f"{name}.log")
        yield {name: port for name, (port, _) in started.items()}
    finally:
        _stop_groups([proc for _, proc in started.values()])


def _stop_groups(procs: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGINT to each server's process group (the server and its code process), SIGKILL after ``grace``.

    Not one wait per server: where SIGINT is ignored (a background job inherits that), a code
    server ignores SIGTERM too, and four sequential waits cost minutes.
    """
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def launch_home(installed: Cluster, tmp_path_factory) -> Path:
    """A DAGSTER_HOME whose run launcher is the platform release's, against the local API server."""
    objects = k8s.render(installed.helm, k8s.platform_release(installed.settings, DOMAINS), NAMESPACE)
    [instance_map] = [o for o in objects if o["metadata"]["name"] == "mesh-platform-instance"]
    instance = yaml.safe_load(instance_map["data"]["dagster.yaml"])
    # the chart's launcher as rendered, outside a pod: the kubeconfig instead of the in-cluster account
    instance["run_launcher"]["config"].update(
        {"load_incluster_config": False, "kubeconfig_file": str(installed.kubeconfig)}
    )
    # the storage (PostgreSQL) and compute logs (Ceph) of the cluster are not what this test checks,
    # and the queue needs a daemon: launched runs go straight to the launcher here
    for key in ("storage", "compute_logs"):
        instance.pop(key)
    instance["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}
    home = tmp_path_factory.mktemp("launch-home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    return home


@pytest.fixture(scope="module")
def lake_secret(installed: Cluster) -> str:
    """The Secrets the releases name, as whoever deploys creates them (values generated, never
    logged): the platform's, the instance's, and each domain's two."""
    wanted = {k8s.LAKE_CREDENTIALS: k8s.SECRET_KEYS, k8s.INSTANCE_CREDENTIALS: k8s.INSTANCE_SECRET_KEYS}
    for domain in {location.domain for location in DOMAINS}:  # companies_airflow serves companies
        wanted[k8s.domain_credentials(domain)] = k8s.DOMAIN_SECRET_KEYS
        wanted[k8s.domain_principal(domain)] = k8s.DOMAIN_PRINCIPAL_FILES
    core = client.CoreV1Api(installed.api())
    for name, keys in wanted.items():
        data = {key: base64.b64encode(secrets.token_urlsafe(16).encode()).decode() for key in keys}
        core.create_namespaced_secret(
            NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=data)
        )
    return k8s.LAKE_CREDENTIALS


def _jobs_of(api, domain: str) -> list:
    selector = f"mesh.os-climate.org/domain={k8s.k8s_name(domain)}"
    return client.BatchV1Api(api).list_namespaced_job(NAMESPACE, label_selector=selector).items


@pytest.mark.parametrize("location", DOMAINS, ids=[loc.name for loc in DOMAINS])
def test_a_run_of_each_domain_is_a_job_in_its_image_with_its_env_and_secrets(
    installed: Cluster,
    code_servers: dict[str, int],
    launch_home: Path,
    lake_secret: str,
    location: Location,
    tmp_path,
):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "127.0.0.1",
                            "port": code_servers[location.name],
                            "location_name": location.name,
                        }
                    }
                ]
            }
        )
    )
    api = installed.api()
    before = {j.metadata.name for j in _jobs_of(api, location.name)}
    launch = subprocess.run(
        [str(DAGSTER), "job", "launch", "-w", str(workspace), "-l", location.name, "-j", "__ASSET_JOB"],
        env={**installed.env, "DAGSTER_HOME": str(launch_home), "MESH_PROFILE": "local"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert launch.returncode == 0, launch.stdout[-2000:] + launch.stderr[-3000:]
    new = [j for j in _jobs_of(api, location.name) if j.metadata.name not in before]
    every = client.BatchV1Api(api).list_namespaced_job(NAMESPACE).items
    assert len(new) == 1, [(j.metadata.name, j.metadata.labels) for j in every]
    [job] = new

    release = k8s.domain_release(installed.settings, location)
    image = f"{release.values['image']['repository']}:{release.values['image']['tag']}"
    pod = job.spec.template.spec
    [container] = pod.containers
    assert container.image == image
    env_from = {(e.config_map_ref or e.secret_ref).name for e in container.env_from}
    # the run holds its domain's credentials and the instance's password, never the platform's
    assert lake_secret not in env_from
    assert env_from == {
        f"{k8s.PLATFORM_RELEASE}-env",
        k8s.INSTANCE_CREDENTIALS,
        k8s.domain_credentials(location.domain),
    }
    assert pod.service_account_name == k8s.PLATFORM_RELEASE
    # the S3 compute logs' AWS SDK config (path-style on Ceph) is mounted in the run's pod too, and
    # the domain principal's files where the settings read them
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    assert mounts.get(k8s.AWS_CONFIG_MAP) == k8s.AWS_CONFIG_DIR, mounts
    principal = k8s.domain_principal(location.domain)
    assert mounts.get(principal) == f"{k8s.CLUSTER_MESH_HOME}/secrets/domains/{location.domain}", mounts
    assert {v.name: v.secret.secret_name for v in pod.volumes if v.secret}.get(principal) == principal
    assert {v.name: v.config_map.name for v in pod.volumes if v.config_map}.get(
        k8s.AWS_CONFIG_MAP
    ) == k8s.AWS_CONFIG_MAP
    assert job.metadata.namespace == NAMESPACE
    assert job.metadata.name == f"dagster-run-{job.metadata.labels['dagster/run-id']}"
    # the pod executes this very run from this location's code
    assert container.args[:3] == ["dagster", "api", "execute_run"], container.args
    assert json.loads(container.args[3])["__class__"] == "ExecuteRunArgs"
