"""The platform's walls are checked, not hoped for: the lint step's import contracts must catch a
domain that imports another domain or a storage client, and no module but settings reads the
environment."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesh_assets.settings import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _python_files(*roots: str) -> list[Path]:
    return sorted(
        p for root in roots for p in (REPO_ROOT / root).rglob("*.py") if "__pycache__" not in p.parts
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The packages and the import contracts, copied so a test can break them."""
    for package in ("mesh_assets", "domains", "bench"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy shadows the installed packages
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_import_contracts_hold_on_the_tree(tree_copy: Path) -> None:
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_domain_importing_another_domain_fails_the_lint_step(tree_copy: Path) -> None:
    _append(
        tree_copy / "domains/emissions/transforms.py",
        "from domains.companies import transforms as _c  # noqa",
    )
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert "domains.emissions" in result.stdout and "domains.companies" in result.stdout
    assert "BROKEN" in result.stdout


def test_a_domain_importing_trino_fails_the_lint_step(tree_copy: Path) -> None:
    _append(tree_copy / "domains/companies/assets.py", "import trino  # noqa")
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert "domains.companies.assets -> trino" in result.stdout


def test_the_platform_importing_a_domain_or_bench_fails_the_lint_step(tree_copy: Path) -> None:
    _append(tree_copy / "mesh_assets/cli/main.py", "import bench.io_bench  # noqa")
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert "mesh_assets.cli.main -> bench.io_bench" in result.stdout


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_no_domain_reaches_the_object_store_through_pyarrow_filesystems() -> None:
    """import-linter sees external packages at their top level only, so pyarrow.fs is checked here."""
    offenders = {
        str(p.relative_to(REPO_ROOT)): sorted(n for n in _imports(p) if n.startswith("pyarrow.fs"))
        for p in _python_files("domains")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _reads_environment(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "putenv", "unsetenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment() -> None:
    """Settings flow one way: read once at the edge (settings.py), passed down, never written back."""
    found = {
        str(p.relative_to(REPO_ROOT)): lines
        for p in _python_files("mesh_assets", "domains")
        if (lines := _reads_environment(p))
    }
    assert set(found) == {"mesh_assets/settings.py"}, found
