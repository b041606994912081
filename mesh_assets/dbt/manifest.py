"""Reading a prepared dbt manifest: models, sources and tests as plain data (JSON only)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.settings import REPO_ROOT

DBT_PROJECTS_DIR = REPO_ROOT / "dbt_projects"
PROFILES_DIR = DBT_PROJECTS_DIR  # one profiles.yml for every domain project


class DbtNotPreparedError(FileNotFoundError):
    """A dbt project's manifest has not been built (``mesh dbt prepare``)."""


def domain_project_dir(domain: str) -> Path | None:
    """``dbt_projects/<domain>`` if the domain has a dbt project."""
    path = DBT_PROJECTS_DIR / domain
    return path if (path / "dbt_project.yml").is_file() else None


def manifest_path(project_dir: Path) -> Path:
    return Path(project_dir) / "target" / "manifest.json"


@dataclass(frozen=True)
class DbtTest:
    unique_id: str
    name: str
    column: str | None
    severity: str
    description: str


@dataclass(frozen=True)
class DbtModel:
    unique_id: str
    name: str
    description: str
    materialized: str
    deps: tuple[tuple[str, ...], ...]  # upstream asset keys (sources and non-ephemeral models)
    tests: tuple[DbtTest, ...]
    mesh: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    columns: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    sql_path: str = ""

    @property
    def partitioned(self) -> bool:
        return bool(self.mesh.get("partitioned_by"))


@dataclass(frozen=True)
class DbtProjectInfo:
    name: str
    project_dir: Path
    models: tuple[DbtModel, ...]


def _source_key(node: dict[str, Any]) -> tuple[str, ...]:
    """``source('companies', 'company_master')`` -> ``("companies", "company_master")``.

    A source may name another key with ``meta: {dagster: {asset_key: [...]}}``.
    """
    custom = (node.get("meta") or {}).get("dagster", {}).get("asset_key")
    return tuple(custom) if custom else (node["source_name"], node["name"])


@functools.cache
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_project(domain: str, project_dir: Path) -> DbtProjectInfo:
    """The marts of ``project_dir``'s prepared manifest, with their upstream keys and tests."""
    path = manifest_path(project_dir)
    if not path.is_file():
        raise DbtNotPreparedError(
            f"the dbt project {project_dir} has no manifest ({path}): build it with `mesh dbt prepare` "
            "(scripts/bootstrap.sh does); code locations never parse dbt when they load"
        )
    manifest = _load(path, path.stat().st_mtime_ns)
    nodes: dict[str, dict[str, Any]] = manifest["nodes"]
    sources: dict[str, dict[str, Any]] = manifest["sources"]
    project = manifest["metadata"].get("project_name") or Path(project_dir).name

    @functools.cache
    def upstream(unique_id: str) -> frozenset[tuple[str, ...]]:
        """Asset keys feeding ``unique_id``; ephemeral models are looked through."""
        keys: set[tuple[str, ...]] = set()
        for dep in nodes[unique_id]["depends_on"]["nodes"]:
            if dep in sources:
                keys.add(_source_key(sources[dep]))
            elif dep in nodes and nodes[dep]["resource_type"] == "model":
                if nodes[dep]["config"]["materialized"] == "ephemeral":
                    keys |= upstream(dep)
                else:
                    keys.add((domain, nodes[dep]["name"]))
        return frozenset(keys)

    tests: dict[str, list[DbtTest]] = {}
    for uid, node in nodes.items():
        if node["resource_type"] != "test" or not node.get("attached_node"):
            continue
        tests.setdefault(node["attached_node"], []).append(
            DbtTest(
                unique_id=uid,
                name=node["name"],
                column=node.get("column_name"),
                severity=str(node["config"].get("severity", "ERROR")).upper(),
                description=node.get("description") or _test_description(node),
            )
        )

    models = []
    for uid, node in sorted(nodes.items()):
        if node["resource_type"] != "model" or node["package_name"] != project:
            continue
        if node["config"]["materialized"] == "ephemeral":
            continue
        models.append(
            DbtModel(
                unique_id=uid,
                name=node["name"],
                description=node.get("description") or "",
                materialized=node["config"]["materialized"],
                deps=tuple(sorted(upstream(uid))),
                tests=tuple(sorted(tests.get(uid, []), key=lambda t: t.name)),
                mesh=dict((node["config"].get("meta") or {}).get("mesh") or {}),
                columns={c: (v.get("description") or "") for c, v in (node.get("columns") or {}).items()},
                sql_path=node.get("original_file_path", ""),
            )
        )
    return DbtProjectInfo(name=project, project_dir=Path(project_dir), models=tuple(models))


def _test_description(node: dict[str, Any]) -> str:
    meta = node.get("test_metadata") or {}
    column = node.get("column_name")
    what = meta.get("name", "test")
    return f"dbt {what} test" + (f" on {column}" if column else "")
