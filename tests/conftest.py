"""Shared fixtures: every test gets its own MESH_HOME, so catalogs and instances never leak between tests."""

from __future__ import annotations

import os
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
