"""Build-time preparation of the dbt projects: the manifest a code location reads when it loads."""

from __future__ import annotations

import time
from pathlib import Path

from mesh_assets.dbt.cli import DbtInvocation, run_dbt
from mesh_assets.dbt.manifest import DBT_PROJECTS_DIR, domain_project_dir, manifest_path
from mesh_assets.settings import MeshSettings


class DbtCommandError(RuntimeError):
    """A build-time dbt command failed; the message carries dbt's errors and its log file."""


def project_dirs() -> list[Path]:
    return sorted(p.parent for p in DBT_PROJECTS_DIR.glob("*/dbt_project.yml"))


def _checked(invocation: DbtInvocation, what: str) -> DbtInvocation:
    if not invocation.ok:
        raise DbtCommandError(
            f"`dbt {what}` failed (exit {invocation.returncode}; log {invocation.log_path}):\n{invocation.error()}"
        )
    return invocation


def prepare(project_dir: Path, settings: MeshSettings) -> Path:
    """``dbt parse`` the project into ``target/manifest.json``; returns the manifest's path."""
    project_dir = Path(project_dir)
    # parse needs no connection; the DuckDB path only has to be a valid setting
    env = settings.process_env({"MESH_DBT_DUCKDB_PATH": str(project_dir / "target" / "parse.duckdb")})
    _checked(
        run_dbt(
            project_dir,
            ["parse"],
            target="local",
            env=env,
            target_path=project_dir / "target",
            log_path=project_dir / "logs" / "prepare.log",
        ),
        f"parse of {project_dir.name}",
    )
    path = manifest_path(project_dir)
    if not path.is_file():
        raise DbtCommandError(f"dbt parse of {project_dir} wrote no manifest at {path}")
    return path


def prepare_all(settings: MeshSettings) -> list[tuple[Path, float]]:
    timings = []
    for project_dir in project_dirs():
        started = time.perf_counter()
        prepare(project_dir, settings)
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
    _checked(
        run_dbt(
            project_dir,
            ["docs", "generate"],
            target=settings.profile.value,
            env=settings.process_env(dbt_env(settings, domain, group)),
            target_path=site,
            log_path=settings.profile_home / "logs" / "dbt" / f"docs-{domain}.log",
        ),
        f"docs generate of {domain}",
    )
    return site / "index.html"
