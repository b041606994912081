"""Column lineage of dbt models: their SQL compiled from the prepared manifest, traced with sqlglot.

``mesh dbt prepare`` parses each project (``dbt parse``): the manifest holds every model's Jinja
SQL and the project's macros, but no compiled SQL (compiling needs a database connection). This
module renders the Jinja the way dbt compiles for the lake (Trino): ``ref`` and ``source`` become
``<catalog>.<domain>.<table>`` (a source is the product whose key it names), ephemeral models are
injected as ``__dbt__cte__<name>`` common table expressions, project macros and ``vars`` are
available, ``is_incremental()`` is false (the full-refresh shape of the query). The result is the
SQL the export shows in lineage, and what sqlglot traces column by column against the upstream
products' contract columns (the same tracer dagster-dbt's ``with_column_lineage`` uses).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.settings import REPO_ROOT, MeshSettings

Key = tuple[str, ...]


class ColumnLineageError(ValueError):
    """A dbt model cannot be compiled or traced; the message names the model and why."""


@functools.cache
def _manifest(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text())


def _project_dir(sql_path: str) -> Path:
    """``dbt_projects/<project>/models/...`` (the ``mesh/dbt_sql`` metadata) -> the project folder."""
    parts = Path(sql_path).parts
    if "models" not in parts:
        raise ColumnLineageError(f"cannot find the dbt project of {sql_path}")
    root = Path(*parts[: parts.index("models")])
    return root if root.is_absolute() else REPO_ROOT / root


def _source_key(node: dict[str, Any]) -> Key:
    custom = (node.get("meta") or {}).get("dagster", {}).get("asset_key")
    return tuple(custom) if custom else (node["source_name"], node["name"])


def compile_model(unique_id: str, sql_path: str, settings: MeshSettings) -> str:
    """The SQL of ``unique_id`` as dbt would compile it for Trino (see the module docstring)."""
    import jinja2

    project_dir = _project_dir(sql_path)
    path = project_dir / "target" / "manifest.json"
    if not path.is_file():
        raise ColumnLineageError(
            f"the dbt project {project_dir} has no manifest ({path}): build it with `mesh dbt prepare`"
        )
    manifest = _manifest(path, path.stat().st_mtime_ns)
    nodes, sources = manifest["nodes"], manifest["sources"]
    if unique_id not in nodes:
        raise ColumnLineageError(f"{unique_id} is not in {path}: run `mesh dbt prepare` again")
    project = manifest["metadata"].get("project_name") or project_dir.name
    domain = project_dir.name
    project_vars = ((yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}).get("vars")) or {}
    macros = "\n".join(
        m["macro_sql"] for m in manifest.get("macros", {}).values() if m.get("package_name") == project
    )
    catalog = settings.trino_catalog
    by_name = {n["name"]: uid for uid, n in nodes.items() if n["resource_type"] == "model"}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])

    def render(uid: str, ctes: dict[str, str]) -> str:
        node = nodes[uid]

        def ref(*args: str, **_: Any) -> str:
            name = args[-1]
            target = by_name.get(name)
            if target is None:
                raise ColumnLineageError(f"{uid}: ref({name!r}) names no model of {project}")
            if nodes[target]["config"]["materialized"] == "ephemeral":
                if name not in ctes:
                    body = render(target, ctes)
                    ctes[name] = body
                return f"__dbt__cte__{name}"
            return f"{catalog}.{domain}.{name}"

        def source(source_name: str, table_name: str) -> str:
            for s in sources.values():
                if s["source_name"] == source_name and s["name"] == table_name:
                    key = _source_key(s)
                    return f"{catalog}.{key[0]}.{'__'.join(key[1:])}"
            raise ColumnLineageError(f"{uid}: source({source_name!r}, {table_name!r}) is not in the manifest")

        def var(name: str, default: Any = None) -> Any:
            return project_vars.get(name, default)

        context = {
            "ref": ref,
            "source": source,
            "var": var,
            "config": lambda *a, **k: "",
            "is_incremental": lambda: False,
            "this": f"{catalog}.{domain}.{node['name']}",
            "target": {"name": "lake", "type": "trino"},
            "none": None,
        }
        try:
            return env.from_string(macros + "\n" + node["raw_code"]).render(context).strip()
        except jinja2.TemplateError as exc:
            raise ColumnLineageError(f"{uid}: cannot render its SQL: {exc}") from None

    ctes: dict[str, str] = {}
    body = render(unique_id, ctes)
    return _inject_ctes(body, ctes)


def _strip_comments(sql: str) -> str:
    return re.sub(r"^(\s*--[^\n]*\n)+", "", sql).lstrip()


def _inject_ctes(sql: str, ctes: dict[str, str]) -> str:
    """Prepend ephemeral models as CTEs, merging with the query's own ``with`` like dbt does."""
    if not ctes:
        return sql
    # dependency order: render() added a CTE only after the CTEs it refers to
    defs = ",\n".join(f"__dbt__cte__{name} as (\n{_strip_comments(body)}\n)" for name, body in ctes.items())
    stripped = _strip_comments(sql)
    match = re.match(r"with\s", stripped, flags=re.IGNORECASE)
    if match:
        return f"with {defs},\n{stripped[match.end() :]}"
    return f"with {defs}\n{stripped}"


def sql_column_lineage(
    sql: str, columns: list[str], upstream_columns: dict[Key, list[str]], catalog: str
) -> dict[str, tuple[tuple[Key, str], ...]]:
    """For every output column, the upstream ``(product key, column)`` pairs it is computed from.

    A column computed from no upstream column (a literal) maps to nothing; a column the SQL does
    not produce raises, naming it.
    """
    import sqlglot
    from sqlglot.errors import ParseError
    from sqlglot.expressions import Table
    from sqlglot.lineage import lineage

    schema: dict[str, Any] = {catalog: {}}
    for key, cols in upstream_columns.items():
        schema[catalog].setdefault(key[0], {})["__".join(key[1:])] = {c: "varchar" for c in cols}
    try:
        expression = sqlglot.parse_one(sql, dialect="trino")
    except ParseError as exc:
        raise ColumnLineageError(f"cannot parse the compiled SQL: {str(exc).splitlines()[0]}") from None
    known = {(catalog, k[0], "__".join(k[1:])): k for k in upstream_columns}
    out: dict[str, tuple[tuple[Key, str], ...]] = {}
    for column in columns:
        try:
            node = lineage(column, expression, schema=schema, dialect="trino")
        except Exception as exc:
            raise ColumnLineageError(f"column {column!r}: {exc}") from None
        found: set[tuple[Key, str]] = set()
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.expression, Table):
                continue
            table = leaf.expression
            key = known.get((table.catalog, table.db, table.name))
            if key is not None:
                found.add((key, leaf.name.split(".")[-1]))
        out[column] = tuple(sorted(found))
    return out
