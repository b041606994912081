"""Kubernetes releases of the mesh: one shared platform release and one release per domain.

A domain ships on its own schedule, so each is its own Helm release of ``deploy/k8s/charts/mesh-domain``
(the Deployment and Service of its code server, in the shape of Dagster's user-deployments chart);
the webserver, the daemon and the instance are one release of ``mesh-platform``. Upgrading a domain's
release touches that domain's objects only. The values come from the mesh settings and the workspace
here, so a domain declares nothing about Kubernetes.

The charts are rendered by ``helm template`` (the same renderer ``helm install`` uses) and every object
is checked against the strict schemas of ``kubernetes-validate`` offline, so ``mesh deploy render``
finds an invalid object without a cluster. Why Helm and our own charts: docs/decisions/0007-kubernetes-releases.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.settings import COMPUTE_LOG_PREFIX, GENERATED_SECRETS, REPO_ROOT, MeshSettings
from mesh_assets.workspace import Location, content_version

CHARTS = REPO_ROOT / "deploy" / "k8s" / "charts"
PLATFORM_RELEASE = "mesh-platform"
# the schema version kubernetes-validate checks against (the local API server is 1.37.x)
SCHEMA_VERSION = "1.37.0"
CODE_SERVER_PORT = 3030
# Secrets are never values: the releases name Secret objects that the operator creates from the
# secret store (the names and keys below). Each process gets only its own:
# - the platform's (webserver, daemon, the platform's own locations): the mesh's own names, and the
#   AWS SDK's for the S3 compute log manager, and the instance's password;
LAKE_CREDENTIALS = "mesh-lake-credentials"
SECRET_KEYS = (
    "MESH_PG_PASSWORD",
    "MESH_S3_ACCESS_KEY",
    "MESH_S3_SECRET_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MESH_DAGSTER_PG_PASSWORD",
)
# - the instance's password alone (the Dagster instance's own role): every run Job;
INSTANCE_CREDENTIALS = "mesh-instance-credentials"
INSTANCE_SECRET_KEYS = ("MESH_DAGSTER_PG_PASSWORD",)
# - a domain's (its code server and run Jobs): its gateway user's keys for the S3 compute logs, as
#   environment, and its principal's credential files (catalog role, gateway user), mounted where
#   MeshSettings.for_domain reads them.
DOMAIN_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
DOMAIN_PRINCIPAL_FILES = tuple(GENERATED_SECRETS)
CLUSTER_MESH_HOME = "/opt/dagster/mesh"
# the platform release's AWS SDK config (path-style S3 on Ceph), mounted into code servers and runs
AWS_CONFIG_MAP = f"{PLATFORM_RELEASE}-aws"
AWS_CONFIG_DIR = "/opt/dagster/aws"


class DeployError(RuntimeError):
    """A release cannot be rendered or is invalid; the message says what to fix."""


def k8s_name(name: str) -> str:
    """A DNS-1123 label from a location name (``portfolio_alignment`` -> ``portfolio-alignment``)."""
    return name.replace("_", "-").lower()


def release_name(domain: str) -> str:
    return f"mesh-{k8s_name(domain)}"


def domain_credentials(domain: str) -> str:
    """The Secret of ``domain``'s environment (keys :data:`DOMAIN_SECRET_KEYS`)."""
    return f"mesh-{k8s_name(domain)}-credentials"


def domain_principal(domain: str) -> str:
    """The Secret of ``domain``'s principal files (keys :data:`DOMAIN_PRINCIPAL_FILES`)."""
    return f"mesh-{k8s_name(domain)}-principal"


def domain_version(location: Location, root: Path = REPO_ROOT) -> str:
    """The code version of a domain's image (:meth:`Location.code_version`): its image tag."""
    return location.code_version(root)


def platform_version(root: Path = REPO_ROOT) -> str:
    return content_version([root / "mesh_assets", root / "pyproject.toml", root / "uv.lock"])


def cluster_env(settings: MeshSettings) -> dict[str, str]:
    """The non-secret settings every process of the cluster gets (the lake profile's endpoints)."""
    keep = ("MESH_PROFILE", "MESH_HOST", "MESH_S3_BUCKET", "MESH_S3_REGION", "MESH_PG_USER")
    env = {k: v for k, v in settings.shell_env().items() if k in keep or k.startswith("MESH_PORT_")}
    env.update({"MESH_PROFILE": "lake", "MESH_HOME": CLUSTER_MESH_HOME, "MESH_RAW_DIR": "/opt/dagster/raw"})
    return dict(sorted(env.items()))


@dataclass(frozen=True)
class Release:
    """One Helm release: its name, its chart and the values it is rendered with."""

    name: str
    chart: Path
    values: Mapping[str, Any] = field(default_factory=dict)


def platform_release(
    settings: MeshSettings, locations: Sequence[Location], *, registry: str = "mesh"
) -> Release:
    """The shared release: webserver, daemon, instance (K8sRunLauncher, S3 compute logs on Ceph)."""
    values = {
        "image": {"repository": f"{registry}/platform", "tag": platform_version()},
        "codeLocations": [
            {"name": loc.name, "host": release_name(loc.name), "port": CODE_SERVER_PORT} for loc in locations
        ],
        "env": cluster_env(settings),
        "envSecrets": [LAKE_CREDENTIALS],
        "runLauncher": {"envSecrets": [INSTANCE_CREDENTIALS]},
        "postgres": {
            "host": settings.host,
            "port": settings.ports.postgres,
            "database": settings.pg_dagster_db,
            "user": settings.pg_dagster_user,
            "passwordEnv": INSTANCE_SECRET_KEYS[0],
        },
        "computeLogs": {
            "enabled": True,
            "endpoint": settings.s3_endpoint,
            "bucket": settings.s3_bucket,
            "prefix": COMPUTE_LOG_PREFIX,
            "region": settings.s3_region,
        },
    }
    return Release(PLATFORM_RELEASE, CHARTS / "mesh-platform", values)


def image_name(location: Location) -> str:
    """The image a location runs in: its domain's (``--build-arg DOMAIN=``), which holds every
    location of that package (``companies_airflow`` runs in ``companies``'s image)."""
    return location.domain if location.module_name.startswith("domains.") else location.name


def domain_release(settings: MeshSettings, location: Location, *, registry: str = "mesh") -> Release:
    """One domain's release: its code server, whose image and env its run Jobs get too.

    A domain's location gets its own principal's Secrets and the instance's, never the platform's
    (a platform location, such as the OpenMetadata export, keeps the platform's).
    """
    version = domain_version(location)
    if location.module_name.startswith("domains."):
        domain = location.domain
        secrets = [INSTANCE_CREDENTIALS, domain_credentials(domain)]
        files = {domain_principal(domain): f"{CLUSTER_MESH_HOME}/secrets/domains/{domain}"}
    else:
        secrets, files = [LAKE_CREDENTIALS], {}
    values = {
        "domain": location.name,
        "module": location.module_name,
        "image": {"repository": f"{registry}/{k8s_name(image_name(location))}", "tag": version},
        "codeVersion": version,
        "port": CODE_SERVER_PORT,
        "envConfigMaps": [f"{PLATFORM_RELEASE}-env"],
        "envSecrets": secrets,
        "configMounts": {AWS_CONFIG_MAP: AWS_CONFIG_DIR},
        "secretMounts": files,
        "runJob": {"serviceAccountName": PLATFORM_RELEASE},
    }
    return Release(release_name(location.name), CHARTS / "mesh-domain", _with_domain_values(values, location))


# what a domain may decide in its deploy.yaml: its size (the platform derives everything else)
DOMAIN_VALUE_KEYS = {"replicas": None, "resources": None, "runJob": {"resources", "labels"}}


def _with_domain_values(values: dict[str, Any], location: Location) -> dict[str, Any]:
    """``values`` with the domain's own ``deploy.yaml`` (its folder) merged over them, if it has one."""
    path = location.package_dir() / "deploy.yaml"
    if not path.is_file():
        return values
    try:
        own = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DeployError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(own, dict):
        raise DeployError(f"{path}: expected a mapping of Helm values, got {type(own).__name__}")
    merged = dict(values)
    for key, value in own.items():
        if key not in DOMAIN_VALUE_KEYS:
            raise DeployError(
                f"{path}: {key!r} is the platform's to set; a domain sets only {sorted(DOMAIN_VALUE_KEYS)}"
            )
        allowed = DOMAIN_VALUE_KEYS[key]
        if allowed is None:
            merged[key] = value
            continue
        extra = set(value or {}) - allowed
        if extra:
            raise DeployError(
                f"{path}: {key}.{sorted(extra)} is the platform's to set; a domain sets {sorted(allowed)}"
            )
        merged[key] = {**merged.get(key, {}), **(value or {})}
    return merged


def find_helm(settings: MeshSettings) -> Path:
    """The helm that ``mesh infra up k8s`` built (or one on PATH)."""
    built = settings.services_dir / "k8s" / "bin" / "helm"
    if built.exists():
        return built
    found = shutil.which("helm", path=settings.environ.get("PATH"))
    if found:
        return Path(found)
    raise DeployError(f"helm is not installed: run `mesh infra up k8s` (it builds helm into {built.parent})")


def _helm(helm: Path, *args: str, values: Mapping[str, Any] | None = None, timeout: float = 300) -> str:
    cmd = [str(helm), *args]
    if values is not None:
        cmd += ["--values", "-"]  # JSON is YAML: the values never touch the disk
    proc = subprocess.run(
        cmd,
        input=json.dumps(values) if values is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise DeployError(f"helm {args[0]} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def render(helm: Path, release: Release, namespace: str) -> list[dict[str, Any]]:
    """The objects ``helm install`` would create for ``release`` (``helm template``, no cluster)."""
    text = _helm(
        helm, "template", release.name, str(release.chart), "--namespace", namespace, values=release.values
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate(objects: Iterable[Mapping[str, Any]], version: str = SCHEMA_VERSION) -> list[str]:
    """Problems of ``objects`` against Kubernetes' strict schemas (unknown fields are errors)."""
    import kubernetes_validate

    problems = []
    for obj in objects:
        label = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{label}: {path or '(root)'}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            problems.append(f"{label}: no schema ({exc})")
    return problems


def install(helm: Path, release: Release, namespace: str, kubeconfig: Path) -> str:
    """``helm upgrade --install`` of one release (creates the namespace when missing)."""
    args = ["upgrade", "--install", release.name, str(release.chart), "--namespace", namespace]
    args += ["--create-namespace", "--kubeconfig", str(kubeconfig)]
    return _helm(helm, *args, values=release.values)


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False)
