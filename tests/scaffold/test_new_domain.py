"""`mesh new-domain NAME`, run as a user runs it, in a copy of the repository (the real one is never
touched): the new domain loads, materializes under its contract and passes the tests that look at
every domain of the workspace, with no edit of any file by hand.

The copy holds what git tracks (and what is new but not ignored), plus the dbt manifests `mesh dbt
prepare` generates; it imports its own `mesh_assets` and `domains` (PYTHONPATH) with this venv
(linked as its `.venv`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_assets.settings import REPO_ROOT, get_settings

# a name no domain of the repository has yet (the suite must also pass after `mesh new-domain
# demo_domain`, when this test scaffolds its own next to that one)
NAME = next(
    name
    for name in ("demo_domain", *(f"demo_domain_{i}" for i in range(2, 100)))
    if not (REPO_ROOT / "domains" / name).exists()
)
IN_CI = os.environ.get("CI", "").lower() == "true"
# the suite's tests that read every code location of the workspace and run in a minute (the rest
# name the sample's domains, or run the whole mesh end to end: a CI run of a repository with a new
# domain runs them)
# the tests that look at every location (the contract files' without the demo run: not slow)
WORKSPACE_WIDE = ["tests/architecture", "tests/governance", "tests/test_contract_files.py", "-m", "not slow"]


def _repo_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = [f for f in listed.split("\0") if f]
    files += [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("dbt_projects/*/target/manifest.json")]
    for relative in files:
        source = REPO_ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    (target / ".venv").symlink_to(REPO_ROOT / ".venv")  # `.venv/bin/mesh` as tests call it
    return target


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _repo_copy(tmp_path_factory.mktemp("repo") / "mesh")


def run(repo: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """A command in the copy, with the copy's packages first on the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env.update({"PYTHONPATH": str(repo), "MESH_HOME": str(repo / ".mesh"), "PYTHONDONTWRITEBYTECODE": "1"})
    if "CI" in os.environ:
        env["CI"] = os.environ["CI"]
    try:  # the helm `mesh infra up k8s` built, for `mesh deploy render`
        from mesh_assets.deploy.k8s import DeployError, find_helm

        env["PATH"] = f"{find_helm(get_settings()).parent}{os.pathsep}{env.get('PATH', '')}"
    except DeployError:
        pass
    return subprocess.run(
        list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def mesh(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(repo, sys.executable, "-c", "from mesh_assets.cli.main import main; main()", *args)


def test_a_bad_or_taken_name_is_refused_and_changes_nothing(repo: Path) -> None:
    workspace = (repo / "workspace.yaml").read_text()
    lock = (repo / "uv.lock").read_text()
    domains = sorted(p.name for p in (repo / "domains").iterdir())
    for name, said in (("companies", "already exists"), ("Bad-Name", "cannot name a domain")):
        result = mesh(repo, "new-domain", name)
        assert result.returncode == 1, result.stdout
        assert said in result.stderr, result.stderr
    assert (repo / "workspace.yaml").read_text() == workspace
    assert (repo / "uv.lock").read_text() == lock
    assert sorted(p.name for p in (repo / "domains").iterdir()) == domains


def test_new_domain_loads_materializes_and_passes_the_workspace_wide_tests(repo: Path) -> None:
    made = mesh(repo, "new-domain", NAME, "--owner", "shipping-team@example.org", "--dbt")
    assert made.returncode == 0, made.stdout + made.stderr
    # the command ran the domain's own tests: its transform, and its products (the Python asset and
    # the dbt mart) materialized under their contracts
    assert re.search(r"running its own tests: [0-9]+ passed", made.stdout), made.stdout
    folder = repo / "domains" / NAME
    for relative in (
        "definitions.py",
        "assets.py",
        "transforms.py",
        "contracts/reference_codes.odcs.yaml",
        f"tests/test_{NAME}_domain.py",
        "deploy.yaml",
        "pyproject.toml",
        "contracts/reference_code_summary.odcs.yaml",
        f"../../dbt_projects/{NAME}/models/marts/reference_code_summary.sql",
        f"../../dbt_projects/{NAME}/target/manifest.json",
    ):
        assert (folder / relative).is_file(), relative
    entries = yaml.safe_load((repo / "workspace.yaml").read_text())["load_from"]
    assert {"module_name": f"domains.{NAME}.definitions", "location_name": NAME} in [
        e["python_module"] for e in entries
    ]
    snapshots = (repo / "tests/architecture/__snapshots__/test_location_snapshots.ambr").read_text()
    assert f"[{NAME}]" in snapshots
    # the dbt mart is an asset of the location, governed by its contract (dbt tests and contract as checks)
    assert f"'{NAME}/reference_code_summary'" in snapshots
    # its own package, in the workspace's one lock (tests/architecture checks its wheel)
    assert f'name = "mesh-domain-{NAME.replace("_", "-")}"' in (repo / "uv.lock").read_text()
    contract = yaml.safe_load((folder / "contracts/reference_codes.odcs.yaml").read_text())
    assert contract["team"]["members"] == [{"username": "shipping-team@example.org", "role": "owner"}]

    # what it wrote passes the lint step as it is (ruff check and format, with the project's settings)
    for lint in (["check"], ["format", "--check"]):
        linted = run(repo, sys.executable, "-m", "ruff", *lint, f"domains/{NAME}")
        assert linted.returncode == 0, linted.stdout + linted.stderr

    # the tests that look at every location, with the new one among them
    suite = run(repo, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WORKSPACE_WIDE)
    assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout and " failed" not in suite.stdout

    # its own Kubernetes release, its size from its deploy.yaml, checked against the schemas
    render = mesh(repo, "deploy", "render", NAME)
    if render.returncode != 0 and "helm is not installed" in render.stderr and not IN_CI:
        pytest.skip("helm is not installed (mesh infra up k8s builds it)")
    assert render.returncode == 0, render.stderr
    objects = [o for o in yaml.safe_load_all(render.stdout) if o]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["memory"] == "384Mi"
    assert container["image"].startswith(f"mesh/{NAME.replace('_', '-')}:")


@pytest.mark.parametrize("name", ["platform", "mesh_lineage", "class", "x", "9lives", "has-dash", "Upper"])
def test_names_the_platform_uses_or_python_refuses_are_refused_before_anything_is_written(
    tmp_path, name
) -> None:
    from mesh_assets.scaffold.domain import ScaffoldError, new_domain

    (tmp_path / "domains").mkdir()
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    with pytest.raises(ScaffoldError, match="cannot name a domain"):
        new_domain(name, root=tmp_path)
    assert list((tmp_path / "domains").iterdir()) == []
