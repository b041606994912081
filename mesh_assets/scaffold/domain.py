"""``mesh new-domain NAME``: a domain that loads, checks and passes the test suite from its first commit.

A domain is a folder, ``domains/<name>/``, and one entry in ``workspace.yaml``: nothing else in the
repository names it. The templates (``templates/domain/``) give it a package of its own (a member of the
uv workspace, added to the one lock) whose code location is built by the platform, a first product kept as code (a reference table from a CSV in the folder)
with its ODCS contract, tests of its own (collected by the suite from ``domains/*/tests``) and the
Helm values of its own release (``deploy.yaml``: its size only). The domain's team then replaces the
first product with theirs; everything the platform does for a product (Iceberg table, blocking
contract check, lineage, deploys, catalog export) applies to it unchanged.

Everything is written to a temporary folder and moved into place at once, and the workspace entry
is appended last: a refused name or a failed write leaves the repository as it was.
"""

from __future__ import annotations

import keyword
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mesh_assets.settings import REPO_ROOT
from mesh_assets.workspace import WorkspaceError, find_uv, locations

TEMPLATES = Path(__file__).parent / "templates"
# a placeholder left unfilled ({{name}}; dbt's Jinja, `{{ ref(...) }}`, has spaces and is kept)
PLACEHOLDER = re.compile(r"\{\{[a-z_]+\}\}")
NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# names the platform uses for itself (a release, a location, a package of the repository)
RESERVED = {"platform", "mesh_lineage", "mesh_assets", "domains", "tests", "bench", "deploy"}


class ScaffoldError(ValueError):
    """The domain cannot be created; the message says why and what to choose instead."""


@dataclass(frozen=True)
class Scaffolded:
    name: str
    folder: Path
    files: list[Path]


def new_domain(
    name: str,
    *,
    owner: str | None = None,
    description: str | None = None,
    dbt: bool = False,
    root: Path = REPO_ROOT,
    workspace: Path | None = None,
) -> Scaffolded:
    """Create ``domains/<name>/`` (and, with ``dbt``, ``dbt_projects/<name>/`` with a first mart and
    its contract) from the templates and add its code location to the workspace."""
    workspace = workspace or root / "workspace.yaml"
    folder = root / "domains" / name
    dbt_folder = root / "dbt_projects" / name
    _check_name(name, folder, workspace)
    if dbt and dbt_folder.exists():
        raise ScaffoldError(f"{dbt_folder} already exists: remove it or choose another name")
    values = {
        "domain": name,
        "title": name.replace("_", " ").capitalize(),
        "owner": owner or f"{name}-owners@mesh.example",  # as the sample's domains: <domain>-owners
        # one line, no quotes or backslashes: it goes into a docstring and a TOML string
        "description": " ".join(
            (description or f"the {name.replace('_', ' ')} domain's data products.").replace('"', "'").split()
        ).replace("\\", "/"),
        "package": name.replace("_", "-"),
    }
    layout = [(TEMPLATES / "domain", folder)]
    if dbt:
        layout += [(TEMPLATES / "domain_dbt", folder), (TEMPLATES / "dbt", dbt_folder)]
    written: list[Path] = []
    moved: list[Path] = []
    try:
        for target in dict.fromkeys(t for _, t in layout):  # each target folder, staged then moved at once
            staging = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=target.parent))
            try:
                for source, into in layout:
                    if into == target:
                        written += _render_tree(source, staging, target, values)
                staging.rename(target)
                moved.append(target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except BaseException:
        for target in moved:
            shutil.rmtree(target, ignore_errors=True)
        raise
    lock = root / "uv.lock"
    before = lock.read_bytes() if lock.exists() else None
    workspace_before = workspace.read_bytes()
    try:
        _add_location(workspace, name)
        _lock(root)
    except BaseException:
        for target in moved:
            shutil.rmtree(target, ignore_errors=True)
        workspace.write_bytes(workspace_before)
        if before is not None:
            lock.write_bytes(before)
        raise
    return Scaffolded(name, folder, written)


def _lock(root: Path) -> None:
    """Add the new package to the workspace's one lock (its dependencies are the locked ones)."""
    try:
        uv = find_uv()
    except WorkspaceError as exc:
        raise ScaffoldError(f"{exc}; nothing was created") from exc
    done = subprocess.run(
        [*uv, "lock", "--quiet", "--no-python-downloads"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ScaffoldError(f"`uv lock` failed, nothing was created:\n{done.stderr.strip()[-3000:]}")


def _check_name(name: str, folder: Path, workspace: Path) -> None:
    if not NAME.match(name) or keyword.iskeyword(name) or name in RESERVED:
        raise ScaffoldError(
            f"{name!r} cannot name a domain: use 2-41 lower-case letters, digits and underscores, starting "
            f"with a letter (it becomes a Python package, a schema and a Kubernetes name), not one of {sorted(RESERVED)}"
        )
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: the domain {name!r} is there already")
    try:
        taken = {loc.name for loc in locations(workspace)}
    except WorkspaceError as exc:
        raise ScaffoldError(str(exc)) from None
    if name in taken:
        raise ScaffoldError(f"{workspace} already has a code location named {name!r}")


def _render_tree(source: Path, staging: Path, target: Path, values: dict[str, str]) -> list[Path]:
    """Render every ``*.tmpl`` under ``source`` into ``staging``; the paths they will have under ``target``."""
    written = []
    for template in sorted(source.rglob("*.tmpl")):
        relative = Path(
            str(template.relative_to(source).with_suffix("")).replace("__domain__", values["domain"])
        )
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        (staging / relative).write_text(_render(template, values))
        written.append(target / relative)
    return written


def _render(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if left := PLACEHOLDER.search(text):
        raise ScaffoldError(f"template {template} has a placeholder no value fills: {left.group()}")
    return text


def _add_location(workspace: Path, name: str) -> None:
    """Append the domain's entry, keeping the file's comments; checked by reading it back."""
    text = workspace.read_text()
    entry = (
        f"  - python_module:\n      module_name: domains.{name}.definitions\n      location_name: {name}\n"
    )
    updated = text if text.endswith("\n") else text + "\n"
    tmp = workspace.with_name(f".{workspace.name}.new")
    tmp.write_text(updated + entry)
    try:
        if name not in {loc.name for loc in locations(tmp)}:
            raise ScaffoldError(f"could not add {name} to {workspace}: edit it by hand ({entry.strip()})")
        tmp.replace(workspace)
    finally:
        tmp.unlink(missing_ok=True)
