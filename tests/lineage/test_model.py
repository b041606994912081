"""The mesh model: code locations as Dagster loads them, declared column lineage, clear errors (no SDK)."""

from __future__ import annotations

import sys
import textwrap

import dagster as dg
import pytest


def _location(tmp_path, name: str, body: str):
    package = tmp_path / f"lineage_locations_{name}"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / f"{name}.py").write_text(textwrap.dedent(body))
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    return f"lineage_locations_{name}.{name}"


PRODUCTS = """
    import dagster as dg

    COLUMNS = dg.TableSchema(columns=[dg.TableColumn("id", "string"), dg.TableColumn("v", "double")])

    @dg.asset(key=["shop", "orders"], metadata={"dagster/column_schema": COLUMNS})
    def orders(): ...

    @dg.asset(
        key=["shop", "totals"],
        deps=[dg.AssetKey(["shop", "orders"])],
        metadata={
            "dagster/column_schema": COLUMNS,
            "dagster/column_lineage": dg.TableColumnLineage(
                deps_by_column={
                    "id": [dg.TableColumnDep(asset_key=dg.AssetKey(["shop", "orders"]), column_name="id")],
                    "v": [dg.TableColumnDep(asset_key=dg.AssetKey(["shop", "orders"]), column_name="v")],
                }
            ),
        },
    )
    def totals(): ...
"""


def test_declared_column_lineage_of_a_python_product(settings, tmp_path):
    from mesh_assets.lineage.model import build_model, load_location_definitions

    module = _location(
        tmp_path, "shop_plain", PRODUCTS + "\n    defs = dg.Definitions(assets=[orders, totals])\n"
    )

    @dg.op
    def noop() -> None: ...

    @dg.job
    def nothing() -> None:
        noop()

    platform = dg.Definitions(jobs=[nothing])  # a location without assets is no pipeline
    model = build_model(
        settings,
        definitions={"shop": load_location_definitions(module), "platform": platform},
        with_instance=False,
    )
    assert model.graph() == (
        {("shop", "orders"), ("shop", "totals")},
        {(("shop", "orders"), ("shop", "totals"))},
    )
    assert dict(model.locations) == {"shop": (("shop", "orders"), ("shop", "totals"))}
    (edge,) = model.edges
    assert edge.source == "pipeline" and edge.pipeline == "shop" and edge.sql is None
    assert edge.columns == (("id", ("id",)), ("v", ("v",)))


def test_a_definitions_function_is_loaded_like_dagster_does(tmp_path):
    from mesh_assets.lineage.model import load_location_definitions

    module = _location(
        tmp_path,
        "shop_lazy",
        PRODUCTS
        + "\n    @dg.definitions\n    def defs():\n        return dg.Definitions(assets=[orders, totals])\n",
    )
    defs = load_location_definitions(module)
    assert isinstance(defs, dg.Definitions)
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} == {
        "shop/orders",
        "shop/totals",
    }


def test_workspace_errors_name_the_file(tmp_path):
    from mesh_assets.lineage.model import MeshModelError, load_location_definitions, workspace_locations

    empty = tmp_path / "workspace.yaml"
    empty.write_text("load_from: []\n")
    with pytest.raises(MeshModelError, match=r"workspace.yaml names no code location"):
        workspace_locations(empty)
    grpc = tmp_path / "grpc.yaml"
    grpc.write_text("load_from:\n  - grpc_server: {host: localhost, port: 4000}\n")
    with pytest.raises(MeshModelError, match=r"only python_module entries"):
        workspace_locations(grpc)
    with pytest.raises(MeshModelError, match=r"no_such_module_xyz does not import"):
        load_location_definitions("no_such_module_xyz")
