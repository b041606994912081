"""``workspace.yaml``: which code locations make up the mesh, read in one place.

The webserver and daemon read the file themselves; the platform reads it to start one code server
per location (``orchestration.services``), to check every domain's contracts (``mesh validate``)
and to describe the mesh to a catalog (``lineage``). Only ``python_module`` entries are supported:
each domain is a package whose ``definitions`` module holds its ``defs``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dagster as dg
import yaml


class WorkspaceError(ValueError):
    """The workspace file is not of the shape the mesh supports."""


@dataclass(frozen=True)
class Location:
    name: str
    module_name: str

    def import_module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def load(self) -> dg.Definitions:
        """The location's definitions, loaded in this process (resolving ``@dg.definitions``)."""
        return definitions_of(self.import_module())


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
