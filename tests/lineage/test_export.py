"""The mesh export against the loopback OpenMetadata: what is sent, that it is valid, and when it is refused."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest
from om_server import TOKEN, LoopbackOpenMetadata, Refused, real_server, validate_strict

from mesh_assets.orchestration.runner import AIRFLOW_DAG_TAG

GOLDEN = Path(__file__).resolve().parent / "golden" / "sample_mesh_requests.json"


def _export(settings, model, server, state_path, **kwargs):
    from mesh_assets.lineage.export import export_mesh

    return export_mesh(settings, url=server.url, token=TOKEN, model=model, state_path=state_path, **kwargs)


def dagster_graph(
    location_definitions,
) -> tuple[set[tuple[str, ...]], set[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Nodes and edges of the workspace's asset graph, read downstream (child keys) from each location;
    the lake's tables only (a legacy Airflow DAG's outputs are its files)."""
    nodes: set[tuple[str, ...]] = set()
    for defs in location_definitions.values():
        graph = defs.resolve_asset_graph()
        nodes |= {tuple(k.path) for k in graph.get_all_asset_keys() if _in_lake(graph, k)}
    edges = set()
    for defs in location_definitions.values():
        graph = defs.resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            for child in graph.get(key).child_keys:
                if _in_lake(graph, child) and tuple(key.path) in nodes:
                    edges.add((tuple(key.path), tuple(child.path)))
    return nodes, edges


def test_request_log_of_the_sample_mesh_matches_the_golden_file(settings, golden_model, server, state_path):
    _export(settings, golden_model, server, state_path)
    log = [{k: r[k] for k in ("method", "path", "query", "body")} for r in server.store.log]
    if os.environ.get("MESH_UPDATE_GOLDEN") == "1" or (
        not GOLDEN.exists() and os.environ.get("CI", "").lower() != "true"
    ):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(log, indent=1, sort_keys=True) + "\n")
    assert log == json.loads(GOLDEN.read_text()), (
        "the requests differ from tests/lineage/golden/sample_mesh_requests.json; if the change is intended, "
        "rerun with MESH_UPDATE_GOLDEN=1 and review the diff"
    )


def test_lineage_graph_sent_equals_the_dagster_asset_graph(
    settings, sample_model, location_definitions, server, state_path
):
    from mesh_assets.lineage.openmetadata import table_fqn

    report = _export(settings, sample_model, server, state_path)
    store = server.store
    nodes, edges = dagster_graph(location_definitions)
    assert set(store.entities["tables"]) == {table_fqn(k, settings.trino_catalog) for k in nodes}
    name_of = {e["id"]: fqn for fqn, e in store.entities["tables"].items()}
    sent_edges = {(name_of[f], name_of[t]) for f, t in store.lineage}
    assert sent_edges == {(table_fqn(u, "iceberg"), table_fqn(d, "iceberg")) for u, d in edges}
    assert report.by_kind["lineage"] == len(edges)
    # each edge names the pipeline (code location) producing its downstream table and its source
    producer = {key: name for name, defs in location_definitions.items() for key in _produced(defs)}
    pipelines = {e["id"]: e for e in store.entities["pipelines"].values()}
    for (_from_id, to_id), details in store.lineage.items():
        key = next(k for k in nodes if table_fqn(k, "iceberg") == name_of[to_id])
        assert pipelines[details["pipeline"]["id"]]["name"] == producer[key]
        kinds = _kinds(location_definitions[producer[key]], key)
        assert details["source"] == ("DbtLineage" if "dbt" in kinds else "PipelineLineage")
        assert bool(details.get("sqlQuery")) == ("dbt" in kinds)
    # every domain, product (table + data product + contract), column and owner is there
    assert set(store.entities["domains"]) == {k[0] for k in nodes}
    assert len(store.entities["dataProducts"]) == len(nodes) == len(store.entities["dataContracts"])
    for product in sample_model.products:
        table = store.entities["tables"][table_fqn(product.key, "iceberg")]
        assert [c["name"] for c in table["columns"]] == [c.name for c in product.columns]
        assert {o["name"] for o in table["owners"]} == {
            o.split(":", 1)[1] for o in product.owners if "team:" in o
        }
    # every pipeline's tasks are its location's assets (a location without assets is no pipeline)
    for name, defs in location_definitions.items():
        if not _produced(defs):
            assert f"mesh_dagster.{name}" not in store.entities["pipelines"]
            continue
        tasks = store.entities["pipelines"][f"mesh_dagster.{name}"]["tasks"]
        assert {t["name"] for t in tasks} == {"/".join(k) for k in _produced(defs)}


def _in_lake(graph, key) -> bool:
    node = graph.get(key)
    return node.is_materializable and AIRFLOW_DAG_TAG not in (node.tags or {})


def _produced(defs) -> set[tuple[str, ...]]:
    graph = defs.resolve_asset_graph()
    return {tuple(k.path) for k in graph.get_all_asset_keys() if _in_lake(graph, k)}


def _kinds(defs, key) -> set[str]:
    import dagster as dg

    return set(defs.resolve_asset_graph().get(dg.AssetKey(list(key))).kinds or ())


def test_column_lineage_of_every_dbt_model(settings, sample_model, location_definitions, server, state_path):
    """Every output column of a dbt model traces to upstream columns, unless its expression reads no column."""
    import sqlglot

    from mesh_assets.lineage.openmetadata import table_fqn

    _export(settings, sample_model, server, state_path)
    store = server.store
    dbt_products = [p for p in sample_model.products if p.source == "dbt"]
    assert dbt_products, "the sample mesh has dbt models"
    for product in dbt_products:
        fqn = table_fqn(product.key, "iceberg")
        table = store.entities["tables"][fqn]
        traced: dict[str, set[str]] = {}
        for (_f, to_id), details in store.lineage.items():
            if to_id != table["id"]:
                continue
            for column in details.get("columnsLineage") or []:
                traced.setdefault(column["toColumn"].rsplit(".", 1)[1], set()).update(column["fromColumns"])
        # an independent reading of the SQL: a column may trace to nothing only if every
        # definition of it (``<expr> as <name>``, in any CTE) reads no column (a literal, count(*))
        select = sqlglot.parse_one(product.sql, dialect="trino")
        produced = {p.alias_or_name for p in select.selects}
        for column in product.columns:
            assert column.name in produced, f"{product.label}.{column.name} is not produced by its SQL"
            if traced.get(column.name):
                continue
            assert _reads_no_column(select, column.name), (
                f"no column lineage for {product.label}.{column.name}, which is computed from columns"
            )
        # every source column is a column of a table the model depends on (checked by the server too)
        upstream = {
            table_fqn(e.upstream, "iceberg") for e in sample_model.edges if e.downstream == product.key
        }
        for sources in traced.values():
            assert {s.rsplit(".", 1)[0] for s in sources} <= upstream


def _reads_no_column(select, name: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether every ``<expr> as <name>`` in the SQL (any CTE) is computed from literals only,
    following columns that are themselves such aliases (by name; a crude but independent reading)."""
    import sqlglot

    definitions = [a.this for a in select.find_all(sqlglot.exp.Alias) if a.alias.lower() == name.lower()]
    if not definitions:
        return False  # a column of a table
    if name in seen:  # a name defined from itself (re-aliased in a later CTE): its literal definitions decide
        return any(d.find(sqlglot.exp.Column) is None for d in definitions)
    return all(
        _reads_no_column(select, c.name, seen | {name})
        for expression in definitions
        for c in expression.find_all(sqlglot.exp.Column)
    )


def test_a_second_unchanged_export_sends_no_change(settings, sample_model, server, state_path):
    first = _export(settings, sample_model, server, state_path)
    seen = len(server.store.log)
    second = _export(settings, sample_model, server, state_path)
    assert server.writes(seen) == []
    assert second.sent == 0 and second.unchanged == first.sent
    # one changed description: exactly that table and its data product are sent again
    changed = dataclasses.replace(
        sample_model,
        products=tuple(
            dataclasses.replace(p, description="changed") if i == 0 else p
            for i, p in enumerate(sample_model.products)
        ),
    )
    seen = len(server.store.log)
    third = _export(settings, changed, server, state_path)
    assert [(r["method"], r["path"]) for r in server.writes(seen)] == [
        ("PUT", "/api/v1/tables"),
        ("PUT", "/api/v1/dataProducts"),
    ]
    assert third.sent == 2


def test_a_reset_server_gets_everything_again(settings, sample_model, server, state_path):
    """The recorded state is trusted only while the server still holds the lake service it recorded."""
    sent = _export(settings, sample_model, server, state_path).sent
    for entities in server.store.entities.values():
        entities.clear()
    server.store.by_id.clear()
    server.store.lineage.clear()
    report = _export(settings, sample_model, server, state_path)
    assert report.sent == sent and report.unchanged == 0


def _with_edge_columns(model, columns):
    edge = next(e for e in model.edges if e.source == "dbt")
    edges = tuple(dataclasses.replace(e, columns=columns) if e is edge else e for e in model.edges)
    return dataclasses.replace(model, edges=edges), edge


def test_unknown_column_in_column_lineage_is_refused(settings, sample_model, server, state_path):
    from mesh_assets.lineage.export import ExportError

    model, edge = _with_edge_columns(sample_model, (("no_such_column", ("also_missing",)),))
    with pytest.raises(ExportError, match=r"failed on lineage .*Invalid fully qualified column name") as err:
        _export(settings, model, server, state_path)
    message = str(err.value)
    assert message.startswith(f"OpenMetadata at {server.url} failed on lineage ")
    assert f"{'.'.join(edge.upstream)}" in message.replace("__", ".") or "->" in message


def test_missing_upstream_table_is_refused(settings, sample_model, server, state_path):
    """A table deleted from the catalog behind the exporter's back: the edge to it is refused, by name."""
    from mesh_assets.lineage.export import ExportError
    from mesh_assets.lineage.openmetadata import table_fqn

    _export(settings, sample_model, server, state_path)
    edge = next(e for e in sample_model.edges if e.source == "dbt")
    gone = table_fqn(edge.upstream, "iceberg")
    entity = server.store.entities["tables"].pop(gone)
    server.store.by_id.pop(entity["id"])
    model, _ = _with_edge_columns(sample_model, ())
    with pytest.raises(ExportError, match=r"failed on lineage .*not found") as err:
        _export(settings, model, server, state_path)
    assert gone in str(err.value)


def test_server_version_mismatch(settings, sample_model, state_path, sdk):
    from mesh_assets.lineage.export import ExportError

    with LoopbackOpenMetadata(token=TOKEN, version="1.9.3") as old:
        with pytest.raises(ExportError, match=r"version does not match.*1\.9\.3") as err:
            _export(settings, sample_model, old, state_path)
        assert old.writes() == []
    assert str(err.value).startswith("OpenMetadata at http://127.0.0.1:")


def test_server_down(settings, sample_model, state_path, sdk):
    from mesh_assets.lineage.export import ExportError

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Down:
        url = f"http://127.0.0.1:{port}"

    with pytest.raises(ExportError, match=r"unreachable") as err:
        _export(settings, sample_model, Down, state_path, timeout=5)
    assert str(err.value).count(".") >= 1 and f":{port}" in str(err.value) and "\n" not in str(err.value)


def test_wrong_token_gets_401_and_is_never_echoed(settings, sample_model, sdk, state_path, caplog):
    from mesh_assets.lineage.export import ExportError, export_mesh

    with LoopbackOpenMetadata(token=TOKEN) as srv, pytest.raises(ExportError, match=r"401") as err:
        export_mesh(settings, url=srv.url, token="wrong-token", model=sample_model, state_path=state_path)
    assert "wrong-token" not in str(err.value) and "wrong-token" not in caplog.text
    assert TOKEN not in caplog.text


def test_the_seam_refuses_unknown_fields_at_any_depth(sdk):
    """The loopback server's validation can fail: a field the schema does not have, deep in a body."""
    from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest

    body = {
        "edge": {
            "fromEntity": {"id": "6f1c0d2e-9a43-4d1b-8d0a-2f1e5c7b9a10", "type": "table"},
            "toEntity": {"id": "6f1c0d2e-9a43-4d1b-8d0a-2f1e5c7b9a11", "type": "table"},
            "lineageDetails": {"columnsLineage": [{"toColumn": "a.b", "weight": 1}]},
        }
    }
    with pytest.raises(Refused, match=r"edge.lineageDetails.columnsLineage\[0\].weight"):
        validate_strict(AddLineageRequest, body)


def test_cli_export(settings, sample_model, server, lineage_env):
    from click.testing import CliRunner

    from mesh_assets.lineage.commands import lineage

    runner = CliRunner()
    result = runner.invoke(lineage, ["export", "--url", server.url], env=lineage_env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OpenMetadata at {server.url}: sent ")
    assert TOKEN not in result.output
    again = runner.invoke(lineage, ["export", "--url", server.url], env=lineage_env)
    assert again.exit_code == 0 and "sent 0 change(s)" in again.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = runner.invoke(
        lineage, ["export", "--url", f"http://127.0.0.1:{port}", "--timeout", "5"], env=lineage_env
    )
    assert down.exit_code == 1
    assert down.output.startswith(f"Error: OpenMetadata at http://127.0.0.1:{port} failed on ")
    assert len(down.output.strip().splitlines()) == 1


def test_code_locations_do_not_import_the_sdk(lineage_env):
    """Loading every code location (and the platform's lineage modules) imports neither the SDK nor sqlglot."""
    import subprocess
    import sys

    from mesh_assets.lineage.model import workspace_locations
    from mesh_assets.settings import REPO_ROOT

    env = {**os.environ, **lineage_env}
    load = "from mesh_assets.lineage.model import load_location_definitions as load; " + "; ".join(
        f"load({module!r})" for _, module in workspace_locations(REPO_ROOT / "workspace.yaml")
    )
    for code in (load, "import mesh_assets.lineage.automation, mesh_assets.lineage.commands"):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        imported = {
            line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line
        }
        assert "dagster" in imported  # the probe works
        assert "metadata" not in imported, f"{code} imports the OpenMetadata SDK"
        assert "sqlglot" not in imported, f"{code} imports sqlglot"


@pytest.mark.skipif(
    real_server() is None, reason="opt-in: set MESH_OPENMETADATA_URL and MESH_OPENMETADATA_TOKEN"
)
def test_real_server_returns_the_lineage_graph_as_exported(settings, sample_model, tmp_path):
    """Against an OpenMetadata 2.0.x started elsewhere: the lineage read back equals what was sent."""
    from mesh_assets.lineage.export import export_mesh
    from mesh_assets.lineage.openmetadata import connect, table_fqn

    url, token = real_server()
    export_mesh(
        settings, url=url, token=token, model=sample_model, state_path=tmp_path / "state.json", full=True
    )
    client = connect(url, token)
    fqn_of = {table_fqn(p.key, "iceberg"): p.key for p in sample_model.products}
    id_to_fqn = {}
    returned = set()
    for fqn in fqn_of:
        lineage = client.get_lineage_by_name("table", fqn, up_depth=1, down_depth=0) or {}
        for node in [lineage.get("entity") or {}, *(lineage.get("nodes") or [])]:
            if node.get("id"):
                id_to_fqn[node["id"]] = node["fullyQualifiedName"]
        for edge in lineage.get("upstreamEdges") or []:
            returned.add((edge["fromEntity"], edge["toEntity"]))
    returned_fqn = {(id_to_fqn[f], id_to_fqn[t]) for f, t in returned if f in id_to_fqn and t in id_to_fqn}
    expected = {
        (table_fqn(e.upstream, "iceberg"), table_fqn(e.downstream, "iceberg")) for e in sample_model.edges
    }
    assert {e for e in returned_fqn if e[0] in fqn_of and e[1] in fqn_of} == expected
