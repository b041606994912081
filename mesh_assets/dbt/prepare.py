"""Build-time preparation of the dbt projects: the manifest a code location reads when it loads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mesh_assets.dbt.manifest import DBT_PROJECTS_DIR, PROFILES_DIR, domain_project_dir, manifest_path
from mesh_assets.settings import MeshSettings


def project_dirs() -> list[Path]:
    return sorted(p.parent for p in DBT_PROJECTS_DIR.glob("*/dbt_project.yml"))


def _dbt(project_dir: Path, *args: str, target: str = "local", env: dict[str, str] | None = None) -> None:
    dbt = Path(sys.executable).parent / "dbt"
    command = [str(dbt), *args, "--project-dir", str(project_dir), "--profiles-dir", str(PROFILES_DIR)]
    command += ["--target", target]
    run_env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # parse needs no connection; the DuckDB path only has to be a valid setting
        "MESH_DBT_DUCKDB_PATH": os.environ.get(
            "MESH_DBT_DUCKDB_PATH", str(project_dir / "target" / "parse.duckdb")
        ),
        **(env or {}),
    }
    done = subprocess.run(command, env=run_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"`dbt {' '.join(args)}` failed for {project_dir} (exit {done.returncode}):\n"
            + (done.stdout[-4000:] + done.stderr[-2000:]).strip()
        )


def prepare(project_dir: Path) -> Path:
    """``dbt parse`` the project into ``target/manifest.json``; returns the manifest's path."""
    _dbt(Path(project_dir), "parse", "--quiet")
    path = manifest_path(Path(project_dir))
    if not path.is_file():
        raise RuntimeError(f"dbt parse of {project_dir} wrote no manifest at {path}")
    return path


def prepare_all() -> list[tuple[Path, float]]:
    timings = []
    for project_dir in project_dirs():
        started = time.perf_counter()
        prepare(project_dir)
        timings.append((project_dir, time.perf_counter() - started))
    return timings


def generate_docs(domain: str, settings: MeshSettings) -> Path:
    """``dbt docs generate`` for a domain's project against its staging target; the site's index.html."""
    from mesh_assets.dbt.runtime import dbt_env

    project_dir = domain_project_dir(domain)
    if project_dir is None:
        raise ValueError(f"domain {domain!r} has no dbt project (dbt_projects/{domain}/dbt_project.yml)")
    site = project_dir / "target" / "docs"
    group = f"{domain}_dbt_{project_dir.name}"  # the unpartitioned models' staging (see assets.py)
    _dbt(
        project_dir,
        "docs",
        "generate",
        "--target-path",
        str(site),
        target=settings.profile.value,
        env=dbt_env(settings, domain, group),
    )
    return site / "index.html"
