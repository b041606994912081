"""Shared fixtures: every test gets its own MESH_HOME, so catalogs and instances never leak between tests;
the one exception is the session's `mesh demo` run, which its tests only read."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def mesh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local-profile MESH_HOME for one test."""
    home = tmp_path / "mesh"
    monkeypatch.setenv("MESH_HOME", str(home))
    monkeypatch.setenv("MESH_PROFILE", "local")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return home


@dataclass(frozen=True)
class DemoRun:
    """What a new user's first command left behind: its MESH_HOME and what it printed."""

    home: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`mesh demo` run once per test session into a fresh local-profile MESH_HOME, as a new user runs it.

    The whole mesh materialized takes one to two minutes (more on a loaded machine): the end-to-end,
    contract-file and lake-versus-embedded tests all read this one run instead of each materializing
    their own. They only read it (tables, instance, output); a test that writes needs its own home.
    The environment is the bare minimum (no DAGSTER_HOME, a plain PATH) so nothing of the caller's leaks in.
    """
    from mesh_assets.settings import REPO_ROOT

    home = tmp_path_factory.mktemp("demo") / "mesh"
    env = {"MESH_HOME": str(home), "MESH_PROFILE": "local", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=1500,  # a ceiling for a loaded 2-core machine, not an expectation
        check=False,
    )
    assert result.returncode == 0, f"mesh demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return DemoRun(home=home, stdout=result.stdout, stderr=result.stderr)
