"""One package per domain (a uv workspace, one lock): each domain's wheel holds that domain only and
depends on the platform; the platform's wheel holds no domain. What a domain's image installs
(deploy/k8s/Containerfile) is that package and what it depends on."""

from __future__ import annotations

import email
import subprocess
import zipfile
from pathlib import Path

import pytest

from mesh_assets.settings import REPO_ROOT
from mesh_assets.workspace import find_uv, locations

# one package per domain, whatever number of code locations it serves (companies: 2)
DOMAINS = sorted(
    {loc.domain for loc in locations(REPO_ROOT / "workspace.yaml") if loc.module_name.startswith("domains.")}
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        [*find_uv(), "build", "--all-packages", "--wheel", "--no-python-downloads", "-o", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {w.name.split("-")[0]: w for w in out.glob("*.whl")}


def _contents(wheel: Path) -> tuple[list[str], email.message.Message]:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" not in n]
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return names, email.message_from_bytes(archive.read(meta))


def test_the_lock_is_the_workspaces(wheels) -> None:
    done = subprocess.run(
        [*find_uv(), "lock", "--check", "--no-python-downloads"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"uv.lock is out of date with the packages: {done.stderr}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domains_wheel_holds_that_domain_only_and_depends_on_the_platform(wheels, domain: str) -> None:
    wheel = wheels.get(f"mesh_domain_{domain}")
    assert wheel, (
        f"no package for the domain {domain}: add domains/{domain}/pyproject.toml (mesh new-domain makes one)"
    )
    names, meta = _contents(wheel)
    assert f"domains/{domain}/definitions.py" in names
    assert any(n.startswith(f"domains/{domain}/contracts/") for n in names)
    outside = [n for n in names if not n.startswith(f"domains/{domain}/")]
    assert outside == [], f"{wheel.name} holds files of other packages: {outside}"
    assert not [n for n in names if "/tests/" in n or n.endswith((".pyc", "pyproject.toml"))]
    assert "mesh-assets" in meta.get_all("Requires-Dist")


def test_the_platforms_wheel_holds_no_domain(wheels) -> None:
    names, _ = _contents(wheels["mesh_assets"])
    assert "mesh_assets/definitions.py" in names
    assert not [n for n in names if n.startswith("domains/")]
