"""The Helm charts of deploy/k8s: rendered, validated offline, and applied to a real API server.

The platform is one release (webserver, daemon, instance); each domain is its own release (its code
server). What users rely on: every object is valid for Kubernetes; upgrading one domain leaves every
object of the others as it was; a run of a domain becomes a Job in that domain's image, with the
env and secrets its release names.
"""

from __future__ import annotations

import json
import re
import shutil

from k8s_cluster import LOCATIONS, NAMESPACE, Cluster, releases

from mesh_assets.deploy import k8s
from mesh_assets.settings import REPO_ROOT


def _kinds(objects) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


# ---- offline: helm template + strict schemas --------------------------------------------------


def test_every_release_renders_objects_valid_for_kubernetes(cluster: Cluster):
    total = 0
    for release in releases(cluster, LOCATIONS):
        objects = k8s.render(cluster.helm, release, NAMESPACE)
        assert k8s.validate(objects) == [], release.name
        total += len(objects)
        if release.name == k8s.PLATFORM_RELEASE:
            assert _kinds(objects) == [
                "ConfigMap/mesh-platform-aws",
                "ConfigMap/mesh-platform-env",
                "ConfigMap/mesh-platform-instance",
                "ConfigMap/mesh-platform-workspace",
                "Deployment/mesh-platform-daemon",
                "Deployment/mesh-platform-webserver",
                "Role/mesh-platform-run-launcher",
                "RoleBinding/mesh-platform-run-launcher",
                "Service/mesh-platform-webserver",
                "ServiceAccount/mesh-platform",
            ]
        else:
            assert _kinds(objects) == [f"Deployment/{release.name}", f"Service/{release.name}"]
    print(f"objects rendered for the platform and {len(LOCATIONS)} code locations: {total}")


def test_the_workspace_and_instance_of_the_platform_point_at_each_domain_and_the_lake(cluster: Cluster):
    import yaml

    objects = k8s.render(cluster.helm, k8s.platform_release(cluster.settings, LOCATIONS), NAMESPACE)
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    workspace = yaml.safe_load(maps["mesh-platform-workspace"]["workspace.yaml"])
    servers = {e["grpc_server"]["location_name"]: e["grpc_server"] for e in workspace["load_from"]}
    assert set(servers) == {loc.name for loc in LOCATIONS}
    assert servers["portfolio_alignment"]["host"] == "mesh-portfolio-alignment"
    instance = yaml.safe_load(maps["mesh-platform-instance"]["dagster.yaml"])
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert instance["run_launcher"]["config"]["job_namespace"] == NAMESPACE
    logs = instance["compute_logs"]
    assert logs["class"] == "S3ComputeLogManager"
    assert logs["config"]["endpoint_url"] == cluster.settings.s3_endpoint
    # the instance as its own role, whose password is all a run gets (not the catalog owner's)
    storage = instance["storage"]["postgres"]["postgres_db"]
    assert storage["username"] == cluster.settings.pg_dagster_user != cluster.settings.pg_user
    assert storage["password"] == {"env": "MESH_DAGSTER_PG_PASSWORD"}
    assert instance["run_launcher"]["config"]["env_secrets"] == [k8s.INSTANCE_CREDENTIALS]
    # no secret value in any rendered object: the releases only name the Secret
    text = k8s.to_yaml(objects)
    assert k8s.LAKE_CREDENTIALS in text


def test_a_domains_release_names_its_own_secrets_and_never_the_platforms(cluster: Cluster):
    """A domain's code server (and the run Jobs its container context makes) gets its principal's
    files where the settings read them, its own keys and the instance's password; the platform's
    own location keeps the platform's Secret."""
    for location in LOCATIONS:
        objects = k8s.render(cluster.helm, k8s.domain_release(cluster.settings, location), NAMESPACE)
        [deployment] = [o for o in objects if o["kind"] == "Deployment"]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        secrets = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        context = json.loads(
            next(e["value"] for e in container["env"] if e["name"] == "DAGSTER_CONTAINER_CONTEXT")
        )
        if not location.module_name.startswith("domains."):
            assert secrets == [k8s.LAKE_CREDENTIALS], location.name
            continue
        domain = location.domain
        assert secrets == [k8s.INSTANCE_CREDENTIALS, k8s.domain_credentials(domain)], location.name
        assert k8s.LAKE_CREDENTIALS not in k8s.to_yaml(objects), location.name
        assert context["k8s"]["env_secrets"] == secrets
        where = f"{k8s.CLUSTER_MESH_HOME}/secrets/domains/{domain}"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[k8s.domain_principal(domain)] == where
        volumes = {v["name"]: v.get("secret") for v in pod["volumes"]}
        assert volumes[k8s.domain_principal(domain)] == {
            "secretName": k8s.domain_principal(domain),
            "defaultMode": 0o400,
        }
        assert {"mount_path": where, "name": k8s.domain_principal(domain), "read_only": True} in context[
            "k8s"
        ]["volume_mounts"]


def test_the_schema_check_names_an_invalid_field(cluster: Cluster):
    location = LOCATIONS[0]
    good = k8s.domain_release(cluster.settings, location)
    bad = k8s.Release(good.name, good.chart, {**good.values, "resources": {"limitz": {"cpu": "1"}}})
    problems = k8s.validate(k8s.render(cluster.helm, bad, NAMESPACE))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"Deployment/{good.name}: spec.template.spec.containers.0.resources")
    assert "limitz" in problems[0]


def test_a_domains_version_changes_with_its_code_only(tmp_path):
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("domains", "mesh_assets", "dbt_projects"):
        shutil.copytree(REPO_ROOT / part, root / part, ignore=ignore)
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO_ROOT / name, root / name)
    by_name = {loc.name: loc for loc in LOCATIONS}
    before = {n: k8s.domain_version(loc, root) for n, loc in by_name.items()}
    assert before == {n: k8s.domain_version(loc) for n, loc in by_name.items()}  # same bytes, same version
    # a rebuilt dbt manifest (new build time, local paths) is not a code change
    manifest = root / "dbt_projects" / "emissions" / "target" / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text('{"metadata": {"generated_at": "another build"}}')
    assert k8s.domain_version(by_name["emissions"], root) == before["emissions"]
    with (root / "domains" / "emissions" / "assets.py").open("a") as f:
        f.write("\n# a change\n")
    after = {n: k8s.domain_version(loc, root) for n, loc in by_name.items()}
    assert after["emissions"] != before["emissions"]
    assert {n: v for n, v in after.items() if n != "emissions"} == {
        n: v for n, v in before.items() if n != "emissions"
    }


def test_mesh_deploy_render_prints_a_checked_release_and_refuses_an_unknown_domain(cluster: Cluster):
    import yaml

    proc = cluster.mesh("deploy", "render", "--target", "k8s", "emissions", "--namespace", NAMESPACE)
    assert proc.returncode == 0, proc.stderr
    objects = [d for d in yaml.safe_load_all(proc.stdout) if d]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    version = k8s.domain_version(next(loc for loc in LOCATIONS if loc.name == "emissions"))
    assert container["image"] == f"mesh/emissions:{version}"
    assert "mesh-emissions: 2 objects, valid for Kubernetes" in proc.stderr
    unknown = cluster.mesh("deploy", "render", "no_such_domain")
    assert unknown.returncode == 2
    assert "'no_such_domain' is not a code location" in unknown.stderr


# ---- against the API server ----------------------------------------------------------------------


def _objects_of(api, release: str) -> dict[str, str]:
    """kind/name -> resourceVersion of what the server stores for ``release``."""
    from kubernetes import client

    selector = f"app.kubernetes.io/instance={release}"
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    found = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items),
        ("Service", core.list_namespaced_service(NAMESPACE, label_selector=selector).items),
        ("ConfigMap", core.list_namespaced_config_map(NAMESPACE, label_selector=selector).items),
    ):
        found.update({f"{kind}/{o.metadata.name}": o.metadata.resource_version for o in items})
    return found


def test_each_domain_is_its_own_release_on_the_server(installed: Cluster):
    listed = installed.helm_cmd("list", "--namespace", NAMESPACE, "--output", "json")
    assert listed.returncode == 0, listed.stderr
    releases = {r["name"]: r for r in json.loads(listed.stdout)}
    expected = {k8s.PLATFORM_RELEASE, *(k8s.release_name(loc.name) for loc in LOCATIONS)}
    assert set(releases) == expected
    assert all(r["status"] == "deployed" for r in releases.values()), releases
    api = installed.api()
    for loc in LOCATIONS:
        assert set(_objects_of(api, k8s.release_name(loc.name))) == {
            f"Deployment/{k8s.release_name(loc.name)}",
            f"Service/{k8s.release_name(loc.name)}",
        }


def test_upgrading_one_domain_leaves_every_other_release_untouched(installed: Cluster):
    from kubernetes import client

    api = installed.api()
    names = [k8s.PLATFORM_RELEASE, *(k8s.release_name(loc.name) for loc in LOCATIONS)]
    before = {name: _objects_of(api, name) for name in names}
    emissions = k8s.domain_release(
        installed.settings, next(loc for loc in LOCATIONS if loc.name == "emissions")
    )
    changed = k8s.Release(
        emissions.name,
        emissions.chart,
        {**emissions.values, "image": {"repository": "mesh/emissions", "tag": "next"}, "codeVersion": "next"},
    )
    k8s.install(installed.helm, changed, NAMESPACE, installed.kubeconfig)
    after = {name: _objects_of(api, name) for name in names}
    for name in names:
        if name != emissions.name:
            assert after[name] == before[name], f"upgrading {emissions.name} changed {name}"
    assert (
        after[emissions.name][f"Deployment/{emissions.name}"]
        != before[emissions.name][f"Deployment/{emissions.name}"]
    )
    deployment = client.AppsV1Api(api).read_namespaced_deployment(emissions.name, NAMESPACE)
    assert deployment.spec.template.spec.containers[0].image == "mesh/emissions:next"
    revision = installed.helm_cmd("history", emissions.name, "--namespace", NAMESPACE, "--output", "json")
    assert [r["revision"] for r in json.loads(revision.stdout)] == [1, 2]


def test_mesh_deploy_apply_installs_one_checked_release_on_the_local_server(cluster: Cluster):
    """`mesh deploy apply DOMAIN` checks, then installs or upgrades that domain's release only."""
    from kubernetes import client

    namespace = "mesh-apply"
    proc = cluster.mesh("deploy", "apply", "companies", "--namespace", namespace)
    assert proc.returncode == 0, proc.stderr
    assert f"mesh-companies: 2 objects applied to namespace {namespace}" in proc.stdout, proc.stdout
    again = cluster.mesh("deploy", "apply", "companies", "--namespace", namespace)  # an upgrade
    assert again.returncode == 0, again.stderr
    listed = cluster.helm_cmd("list", "--namespace", namespace, "--output", "json")
    [release] = json.loads(listed.stdout)
    assert (release["name"], release["revision"], release["status"]) == ("mesh-companies", "2", "deployed")
    deployment = client.AppsV1Api(cluster.api()).read_namespaced_deployment("mesh-companies", namespace)
    version = k8s.domain_version(next(loc for loc in LOCATIONS if loc.name == "companies"))
    assert deployment.spec.template.spec.containers[0].image == f"mesh/companies:{version}"
    unknown = cluster.mesh("deploy", "apply", "no_such_domain", "--namespace", namespace)
    assert unknown.returncode == 2 and "is not a code location" in unknown.stderr
    assert len(json.loads(cluster.helm_cmd("list", "--namespace", namespace, "--output", "json").stdout)) == 1


def test_a_domain_sets_its_own_size_and_nothing_else_in_its_deploy_yaml(tmp_path) -> None:
    from dataclasses import dataclass
    from pathlib import Path

    import pytest

    from mesh_assets.settings import MeshSettings
    from mesh_assets.workspace import Location

    @dataclass(frozen=True)
    class TmpLocation(Location):
        def package_dir(self, root: Path = REPO_ROOT, search=()) -> Path:
            return tmp_path

    (tmp_path / "definitions.py").write_text("")
    location = TmpLocation("sized", "sized.definitions")
    settings = MeshSettings.from_env("lake", {})
    (tmp_path / "deploy.yaml").write_text(
        "replicas: 2\nresources: {requests: {memory: 256Mi}}\nrunJob: {resources: {limits: {memory: 1Gi}}}\n"
    )
    values = k8s.domain_release(settings, location).values
    assert values["replicas"] == 2 and values["resources"] == {"requests": {"memory": "256Mi"}}
    # the platform's keys of runJob stay beside the domain's
    assert values["runJob"] == {
        "serviceAccountName": k8s.PLATFORM_RELEASE,
        "resources": {"limits": {"memory": "1Gi"}},
    }
    for text, said in (
        ("image: {repository: evil/image}\n", "'image' is the platform's to set"),
        ("runJob: {serviceAccountName: admin}\n", "runJob.['serviceAccountName'] is the platform's to set"),
        ("- not a mapping\n", "expected a mapping"),
    ):
        (tmp_path / "deploy.yaml").write_text(text)
        with pytest.raises(k8s.DeployError, match=re.escape(said)):
            k8s.domain_release(settings, location)
