"""``workspace.yaml``: which code locations make up the mesh, read in one place.

The webserver and daemon read the file themselves; the platform reads it to start one code server
per location (``orchestration.services``), to check every domain's contracts (``mesh validate``)
and to describe the mesh to a catalog (``lineage``). Only ``python_module`` entries are supported:
each domain is a package whose ``definitions`` module holds its ``defs``.

A location's **code version** is a digest of what its code server runs: its package, the platform
library, the lock and its dbt project. The same bytes give the same version in any clone, unlike a
commit id, which changes with every other domain; local deploys and Kubernetes images are tagged with it.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dagster as dg
import yaml

from mesh_assets.settings import REPO_ROOT

# files whose content makes a code version: Python, contracts and configs, dbt's SQL and seeds
_VERSIONED_SUFFIXES = {".py", ".yaml", ".yml", ".sql", ".json", ".csv", ".toml"}
# what builds and runs generate inside those folders (bytecode; dbt's manifest, with its build time
# and local paths, and its logs): never part of a version, or each clone would get its own
_GENERATED_DIRS = {"__pycache__", "target", "logs", "dbt_packages"}


class WorkspaceError(ValueError):
    """The workspace file is not of the shape the mesh supports."""


@dataclass(frozen=True)
class Location:
    name: str
    module_name: str

    @property
    def domain(self) -> str:
        """The domain whose package holds the module (``domains.companies.airflow_location`` ->
        companies). A domain's own location is named after it; another location of the same
        package (its legacy Airflow DAGs) serves that domain but holds none of its contracts."""
        parts = self.module_name.split(".")
        return parts[-2] if len(parts) > 1 else parts[0]

    @property
    def owns_contracts(self) -> bool:
        return self.name == self.domain

    def import_module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def load(self) -> dg.Definitions:
        """The location's definitions, loaded in this process (resolving ``@dg.definitions``)."""
        return definitions_of(self.import_module())

    def package_dir(self, root: Path = REPO_ROOT, search: Sequence[Path] = ()) -> Path:
        """The folder of the package holding the location's module, under ``root`` or ``search``
        (the ``PYTHONPATH`` its code server gets), found without importing it."""
        relative = Path(*self.module_name.split(".")[:-1])
        for base in (root, *search):
            if (base / relative).is_dir():
                return base / relative
        raise WorkspaceError(
            f"location {self.name}: no package folder {relative} under {[str(root), *map(str, search)]}"
        )

    def code_version(self, root: Path = REPO_ROOT, search: Sequence[Path] = ()) -> str:
        """The location's code version: its package, the platform library, the lock, its dbt project."""
        paths = [
            self.package_dir(root, search),
            root / "mesh_assets",
            root / "pyproject.toml",
            root / "uv.lock",
        ]
        paths.append(root / "dbt_projects" / self.name)
        return content_version([p for p in paths if p.exists()])


def content_version(paths: Sequence[Path]) -> str:
    """A 12-hex digest of the files under ``paths``: their names (relative to each path's parent)
    and bytes, generated files left out."""
    digest = hashlib.sha256()
    for base, path in _files(paths):
        digest.update(str(path.relative_to(base)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _files(paths: Iterable[Path]) -> Iterable[tuple[Path, Path]]:
    for top in paths:
        if top.is_file():
            yield top.parent, top
            continue
        for path in sorted(top.rglob("*")):
            generated = _GENERATED_DIRS.intersection(path.relative_to(top).parts)
            if path.is_file() and path.suffix in _VERSIONED_SUFFIXES and not generated:
                yield top.parent, path


def locations(workspace_file: Path) -> list[Location]:
    """The code locations of ``workspace_file``, in file order."""
    try:
        entries = yaml.safe_load(Path(workspace_file).read_text())["load_from"] or []
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise WorkspaceError(
            f"{workspace_file}: not a workspace file with load_from entries ({exc})"
        ) from None
    found = []
    for item in entries:
        spec = item.get("python_module") if isinstance(item, dict) else None
        if spec is None:
            raise WorkspaceError(f"{workspace_file}: only python_module entries are supported, got {item}")
        if isinstance(spec, str):
            spec = {"module_name": spec, "location_name": spec}
        found.append(Location(spec.get("location_name") or spec["module_name"], spec["module_name"]))
    return found


def domain_of(module: ModuleType) -> str:
    """The domain a module belongs to: its package under ``domains`` (``domains.emissions.assets`` -> emissions)."""
    parts = module.__name__.split(".")
    if len(parts) < 2:
        raise WorkspaceError(
            f"module {module.__name__!r} is not inside a domain package: put it under domains/<name>/"
        )
    return parts[-2]


def definitions_of(module: ModuleType, attribute: str = "defs") -> dg.Definitions:
    """A module's ``defs``: a ``dg.Definitions``, or a ``@dg.definitions`` function (called here)."""
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise WorkspaceError(f"{module.__name__} has no {attribute!r}") from None
    if isinstance(value, dg.Definitions):
        return value
    if callable(value):
        loaded = value()
        if isinstance(loaded, dg.Definitions):
            return loaded
    raise WorkspaceError(
        f"{module.__name__}.{attribute} is neither dg.Definitions nor a @dg.definitions function"
    )


def find_uv() -> list[str]:
    """The uv command, found as scripts/bootstrap.sh finds it (``python3 -m uv``, else ``uv``): the
    workspace's packages are locked (``mesh new-domain``) and built (``mesh deploy``) with it."""
    candidates = [[sys.executable, "-m", "uv"], ["python3", "-m", "uv"], ["uv"]]
    for command in candidates:
        if shutil.which(command[0]) is None and not Path(command[0]).is_file():
            continue
        probe = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
    raise WorkspaceError("uv is not installed: run scripts/bootstrap.sh (it installs uv), then try again")
