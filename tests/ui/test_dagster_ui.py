"""The Dagster UI end to end, in headless Chromium, on the whole workspace and a fresh instance.

What a person does on day one: open the UI, see every domain's code location loaded, look at the
lineage across domains, open a data product, press Materialize, follow the run to its success, and
read the product's contract check and the Iceberg snapshot it published. Then the portfolio
scores' report (a markdown table and a chart) as the UI renders it, and the portfolio's score, a dbt
model: its dbt tests and its contract as asset checks, and the Iceberg snapshot dbt's rows went to.

Screenshots of every step and a Playwright trace go to ``.mesh/test-artifacts/ui/`` (see conftest).
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections import defaultdict

import pytest

from mesh_assets.dbt.manifest import DBT_PROJECTS_DIR, load_project
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.orchestration import runner
from mesh_assets.orchestration.runner import AssetNode
from mesh_assets.settings import REPO_ROOT
from mesh_assets.workspace import locations

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError:  # conftest's `chromium` fixture fails (CI) or skips (locally) with the reason
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

WORKSPACE = REPO_ROOT / "workspace.yaml"
# A cheap governed product whose only upstream is a raw file; its contract check is blocking.
PRODUCT = ("emissions", "reported_emissions")
SCORES = ("portfolio_alignment", "company_temperature_scores")
# A dbt model (dbt_projects/portfolio_alignment), governed: dbt tests and a contract as asset checks.
PORTFOLIO = ("portfolio_alignment", "portfolio_temperature_score")
RUN_TIMEOUT = 600  # seconds; a 2-core machine shared with other tests
UI_TIMEOUT = 120_000  # milliseconds, for the UI to show what GraphQL already says


def workspace_locations() -> list[str]:
    """Code location names, read from workspace.yaml (the test follows locations added there)."""
    return [loc.name for loc in locations(WORKSPACE)]


def asset_nodes(svc) -> list[AssetNode]:
    """The materializable assets of the workspace, as the UI's GraphQL layer serves them."""
    return runner.asset_nodes(svc.client)


def asset_path(key: tuple[str, ...]) -> str:
    return "/assets/" + "/".join(key)


def shown_as(display: str, name: str) -> bool:
    """Whether a graph node label shows ``name``: the UI shortens long names in the middle (a…b)."""
    if "…" not in display:
        return display == name
    head, tail = display.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(name) >= len(head) + len(tail)


def run_errors(svc, run_id: str) -> str:
    return "\n".join(svc.client.run_errors(run_id))


def materialize_in_ui(page: Page, svc, key: tuple[str, ...], shots, name: str) -> str:
    """Press Materialize on the asset's page, follow the toast's link to the run, wait for success."""
    page.goto(svc.url + asset_path(key))
    button = page.get_by_role("button", name=re.compile(r"(^|\s)Materialize$"))
    expect(button).to_be_enabled(timeout=UI_TIMEOUT)
    shots.take(page, f"{name}-asset-page")
    button.click()
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}"))
    expect(toast).to_be_visible(timeout=UI_TIMEOUT)
    launched = toast.inner_text().split()[-1]  # read before leaving the page: the toast goes with it
    # the toast's "View" link (a second toast may lie over it while it animates: go to its href)
    try:
        href = page.get_by_role("link", name="View", exact=True).get_attribute("href", timeout=10_000)
    except PlaywrightTimeoutError:
        href = None  # a toast is transient: on a slow machine it may be gone already
    shots.take(page, f"{name}-launched")
    if href is None:
        # where a user finds the run then: the Runs page, by the id the toast showed
        page.goto(svc.url + "/runs")
        link = page.locator(f"a[href^='/runs/{launched}']").first
        href = link.get_attribute("href", timeout=UI_TIMEOUT)
    assert href and re.fullmatch(r"/runs/[0-9a-f-]{36}", href), href
    page.goto(svc.url + href)
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)
    assert run_id.startswith(launched)
    run = svc.client.wait_for_run(run_id, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", f"run {run_id}: {run['status']}\n{run_errors(svc, run_id)}"
    assert run["assetSelection"] == [list(key)]
    # The run page shows the success the instance recorded.
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    shots.take(page, f"{name}-run-succeeded")
    return run_id


def metadata_value(page: Page, key: str) -> str:
    """The value cell of a row of the asset page's metadata table."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))
    expect(row).to_have_count(1, timeout=UI_TIMEOUT)
    return row.get_by_role("cell").last.inner_text().strip()


# ---- 1. code locations --------------------------------------------------------------------------
def test_every_code_location_of_the_workspace_is_loaded(dagster_ui, page: Page, shots) -> None:
    locations = workspace_locations()
    assert len(locations) >= 4, locations
    page.goto(dagster_ui.url + "/locations")
    expect(page.get_by_text(f"{len(locations)} code locations", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
    for name in locations:
        row = page.locator("[data-index]").filter(has=page.locator(f"a[href='/locations/{name}/']"))
        expect(row).to_have_count(1, timeout=UI_TIMEOUT)
        expect(row).to_contain_text("Loaded", timeout=UI_TIMEOUT)
        expect(row).not_to_contain_text("Failed")
    shots.take(page, "code-locations")


# ---- 2. lineage across domains -------------------------------------------------------------------
def test_global_asset_graph_shows_the_assets_of_every_domain(dagster_ui, page: Page, shots) -> None:
    nodes = asset_nodes(dagster_ui)
    by_location: dict[str, set[str]] = defaultdict(set)
    for node in nodes:
        by_location[node.location].add(node.path[-1])
    # every domain location publishes assets: not the platform's own (the catalog export), nor the
    # legacy Airflow DAG's (its assets run in the DAG's runs, not the UI's)
    assert set(by_location) == set(workspace_locations()) - {"mesh_lineage", "companies_airflow"}

    # A large window: the graph renders only the nodes in view.
    page.set_viewport_size({"width": 1920, "height": 1400})
    page.goto(dagster_ui.url + "/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=UI_TIMEOUT)
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    graph = page.locator("svg foreignObject > div")  # HTML inside the SVG: one per node
    expect(graph.first).to_be_visible(timeout=UI_TIMEOUT)

    def labels() -> set[str]:
        return {
            text.strip().split("\n", 1)[0].strip()
            for text in graph.all_inner_texts()
            if text and text.strip()
        }

    def shown() -> dict[str, set[str]]:
        seen = labels()
        return {
            loc: {n for n in names if any(shown_as(s, n) for s in seen)} for loc, names in by_location.items()
        }

    # Expanded groups do not refit the view: zoom out step by step until every asset is in view
    # (labels disappear only at a much smaller zoom than the few steps this takes).
    zoom_out = page.get_by_role("button", name="zoom_out", exact=True)
    page.wait_for_timeout(1000)
    for _ in range(8):
        if all(names == by_location[loc] for loc, names in shown().items()):
            break
        zoom_out.click()
        page.wait_for_timeout(700)
    visible, seen = shown(), sorted(labels())
    print(f"graph labels: {seen}")
    shots.take(page, "global-asset-graph")
    for _ in range(2):  # and the whole mesh at a glance, for the reviewer
        zoom_out.click()
    page.wait_for_timeout(700)
    shots.take(page, "global-asset-graph-zoomed-out")
    missing = {
        loc: sorted(by_location[loc] - names) for loc, names in visible.items() if by_location[loc] - names
    }
    assert all(visible.values()), f"domains without an asset in the graph: {missing}; labels {seen}"
    assert not missing, f"assets missing from the graph: {missing}"
    # The lineage joins domains: the scores consume three other domains' products.
    scores = next(n for n in nodes if n.path == SCORES)
    owner = {n.path: n.location for n in nodes}
    assert {owner[d] for d in scores.deps if d in owner} >= {"companies", "emissions", "benchmarks"}


# ---- 3. materialize a product from its page -------------------------------------------------------
def test_materialize_a_product_and_read_its_check_and_snapshot(dagster_ui, page: Page, shots) -> None:
    materialize_in_ui(page, dagster_ui, PRODUCT, shots, "reported-emissions")

    # The blocking contract check passed (and published the audited snapshot).
    page.goto(dagster_ui.url + asset_path(PRODUCT) + "?view=checks")
    check = page.get_by_text("contract", exact=True).first
    expect(check).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.get_by_text("Passed", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
    assert metadata_value(page, "failed_expectations") == "0"
    assert metadata_value(page, "published") == "true"
    published = metadata_value(page, "published_snapshot_id")
    shots.take(page, "reported-emissions-contract-check")

    # The Iceberg metadata of the materialization is the table's current snapshot.
    table = load_catalog(dagster_ui.settings).load_table(".".join(PRODUCT))
    snapshot_id = table.current_snapshot().snapshot_id
    rows = len(table.scan().to_arrow())
    page.goto(dagster_ui.url + asset_path(PRODUCT))
    page.get_by_placeholder("Filter metadata keys").fill("iceberg/")
    assert metadata_value(page, "iceberg/snapshot_id").replace(",", "") == str(snapshot_id) == published
    assert metadata_value(page, "iceberg/table_row_count").replace(",", "") == str(rows)
    assert metadata_value(page, "iceberg/table") == ".".join(PRODUCT)
    section = page.get_by_role("table").filter(has=page.get_by_role("cell", name="iceberg/snapshot_id"))
    section.scroll_into_view_if_needed()
    shots.take(page, "reported-emissions-iceberg-metadata", locator=section)
    shots.take(page, "reported-emissions-overview", height=2400)


# ---- 4. the portfolio scores' report ---------------------------------------------------------------
def _materialized(svc, keys: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Those of ``keys`` the instance has a materialization of (of any partition)."""
    data = svc.client.graphql(
        """
        query UiMaterialized($keys: [AssetKeyInput!]) {
          assetNodes(assetKeys: $keys) { assetKey { path } assetMaterializations(limit: 1) { runId } }
        }
        """,
        {"keys": [{"path": list(k)} for k in keys]},
    )["assetNodes"]
    return {tuple(n["assetKey"]["path"]) for n in data if n["assetMaterializations"]}


def _materialize_upstream(
    svc, nodes: list[AssetNode], key: tuple[str, ...], *, missing_only: bool = False
) -> list[dict]:
    """Materialize everything ``key`` depends on (not ``key``), location by location, through GraphQL;
    with ``missing_only``, only what was never materialized."""
    by_key = {n.path: n for n in nodes}
    needed: set[tuple[str, ...]] = set()
    todo = list(by_key[key].deps)
    while todo:
        dep = todo.pop()
        if dep in by_key and dep not in needed:
            needed.add(dep)
            todo.extend(by_key[dep].deps)
    if missing_only:
        needed -= _materialized(svc, needed)
    wanted = [by_key[k] for k in needed]
    runs = []
    for layer in runner.run_groups(wanted):
        launched = [
            svc.client.launch_assets(
                group[0].location,
                [list(n.path) for n in group],
                partition_range=(group[0].partition_keys[0], group[0].partition_keys[-1])
                if group[0].partition_keys
                else None,
            )
            for group in layer
        ]
        for run_id in launched:
            run = svc.client.wait_for_run(run_id, timeout=RUN_TIMEOUT)
            assert run["status"] == "SUCCESS", f"upstream run {run_id}: {run_errors(svc, run_id)}"
            runs.append(run)
    return runs


def test_company_scores_show_their_extremes_and_distribution(dagster_ui, page: Page, shots) -> None:
    started = time.monotonic()
    upstream = _materialize_upstream(dagster_ui, asset_nodes(dagster_ui), SCORES)
    print(f"upstream of {'/'.join(SCORES)}: {len(upstream)} runs in {time.monotonic() - started:.0f}s")
    materialize_in_ui(page, dagster_ui, SCORES, shots, "company-scores")

    page.goto(dagster_ui.url + asset_path(SCORES))
    page.get_by_placeholder("Filter metadata keys").fill("mesh/score_")

    def entry(key: str):
        return page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))

    # Both extremes tables are drawn as tables in the metadata table (header + 10 rows each).
    for key, title in (("mesh/score_highest", "highest of"), ("mesh/score_lowest", "lowest of")):
        expect(entry(key)).to_contain_text(title, timeout=UI_TIMEOUT)
        table = entry(key).get_by_role("table")
        expect(table).to_have_count(1)
        expect(table.get_by_role("row")).to_have_count(11)
        expect(table.get_by_role("columnheader", name="score °C")).to_be_visible()
    top = entry("mesh/score_highest").get_by_role("table").get_by_role("row").nth(1).get_by_role("cell")
    expect(top.first).to_have_text("1")
    # The text histogram: unicode bars, one row per 0.25 °C bin, and the summary line.
    bars = entry("mesh/score_distribution")
    expect(bars.get_by_role("columnheader", name=re.compile("█ target"))).to_be_visible()
    expect(bars).to_contain_text(re.compile(r"\d+ scores · median \d\.\d\d °C"))
    assert "█" in bars.inner_text()
    # The numbers the UI plots across materializations.
    assert 1.0 <= float(metadata_value(page, "mesh/score_median_c")) <= 4.4
    assert 0.0 <= float(metadata_value(page, "mesh/score_default_share")) <= 1.0
    page.get_by_placeholder("Filter metadata keys").scroll_into_view_if_needed()
    shots.take(page, "company-scores-metadata", height=2600)

    # The SVG chart is too long to draw in the table: "[Show Markdown]" opens it in a dialog, where
    # the browser decodes the data: URI image.
    entry("mesh/score_chart").get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    image = dialog.get_by_role("img", name=re.compile(r"^histogram of \d+ temperature scores"))
    expect(image).to_be_visible(timeout=UI_TIMEOUT)
    width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width == 640, f"the chart did not render (natural width {width})"
    src = image.get_attribute("src") or ""
    assert src.startswith("data:image/svg+xml;base64,")
    assert "<rect" in base64.b64decode(src.split(",", 1)[1]).decode()
    shots.take(page, "company-scores-chart")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


# ---- 5. a dbt model: its tests and its contract as checks, its Iceberg snapshot -------------------
def check_item(page: Page, name: str):
    """A check of the Checks tab's list: its (middle-truncated) name, titled in full, and its status."""
    return page.locator(f"span:has(> div[title='{name}'])")


def test_dbt_model_materializes_with_its_tests_and_contract_as_checks(dagster_ui, page: Page, shots) -> None:
    # After test 4 only the holdings are missing upstream (run alone, this materializes it all).
    started = time.monotonic()
    upstream = _materialize_upstream(dagster_ui, asset_nodes(dagster_ui), PORTFOLIO, missing_only=True)
    print(f"upstream of {'/'.join(PORTFOLIO)}: {len(upstream)} runs in {time.monotonic() - started:.0f}s")
    run_id = materialize_in_ui(page, dagster_ui, PORTFOLIO, shots, "portfolio-score")

    # One check per dbt test of the model (as its prepared manifest declares them) and the contract.
    domain, model_name = PORTFOLIO
    [model] = [m for m in load_project(domain, DBT_PROJECTS_DIR / domain).models if m.name == model_name]
    tests = [t.name for t in model.tests]
    accepted = next(name for name in tests if name.startswith("accepted_values_"))
    # the aggregation methods the model may publish (ITR's seven and WATS over data-based holdings)
    assert accepted == (
        "accepted_values_portfolio_temperature_score_method__WATS__WATS_data_only__TETS__MOTS__EOTS__ECOTS__AOTS__ROTS"
    )
    assert "not_null_portfolio_temperature_score_method" in tests
    checks = [*tests, "contract"]
    page.goto(dagster_ui.url + asset_path(PORTFOLIO) + "?view=checks")
    expect(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
    for name in checks:
        expect(check_item(page, name)).to_have_count(1, timeout=UI_TIMEOUT)
        expect(check_item(page, name)).to_contain_text("Succeeded", timeout=UI_TIMEOUT)

    def open_check(name: str, description: str) -> None:
        """Select the check; its latest execution: passed, in the run launched above."""
        check_item(page, name).click()
        expect(page).to_have_url(re.compile(rf"checkDetail={re.escape(name)}(&|$)"))
        expect(page.get_by_text(description)).to_be_visible(timeout=UI_TIMEOUT)
        expect(page.get_by_text("Passed", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
        expect(page.locator(f"a[href^='/runs/{run_id}']").first).to_be_visible(timeout=UI_TIMEOUT)

    open_check(accepted, "dbt accepted_values test on method")
    assert metadata_value(page, "status") == "pass"
    assert metadata_value(page, "failures") == "0"
    shots.take(page, "portfolio-score-dbt-test-check")
    open_check("contract", "Audits the staged model against its data contract")
    assert metadata_value(page, "failed_expectations") == "0"
    assert metadata_value(page, "published") == "true"
    shots.take(page, "portfolio-score-contract-check")

    # The materialization is the Iceberg table's current snapshot, committed by this run for the model.
    table = load_catalog(dagster_ui.settings).load_table(".".join(PORTFOLIO))
    snapshot = table.current_snapshot()
    rows = len(table.scan().to_arrow())
    assert rows > 0
    assert snapshot.summary["mesh.dagster.run-id"] == run_id
    page.goto(dagster_ui.url + asset_path(PORTFOLIO))
    row_count = page.locator("div:has(> span:text-is('Row count'))")
    expect(row_count).to_have_count(1, timeout=UI_TIMEOUT)
    expect(row_count).to_contain_text(re.compile(r"\d"), timeout=UI_TIMEOUT)
    assert row_count.inner_text().split("\n")[-1].strip().replace(",", "") == str(rows)
    # The kinds of the definition: dbt (with its logo) and Iceberg.
    kinds = page.locator("div:has(> span:text-is('Kinds'))")
    expect(kinds.get_by_role("img", name="dbt", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
    expect(kinds).to_contain_text("dbt")
    shots.take(page, "portfolio-score-overview", height=2600)
    page.get_by_placeholder("Filter metadata keys").fill("iceberg/")
    assert metadata_value(page, "iceberg/snapshot_id").replace(",", "") == str(snapshot.snapshot_id)
    assert metadata_value(page, "iceberg/table_row_count").replace(",", "") == str(rows)
    assert metadata_value(page, "iceberg/table") == ".".join(PORTFOLIO)
    section = page.get_by_role("table").filter(has=page.get_by_role("cell", name="iceberg/snapshot_id"))
    section.scroll_into_view_if_needed()
    shots.take(page, "portfolio-score-iceberg-metadata", locator=section)
    # The model's id on the definition is the one the snapshot records.
    page.get_by_placeholder("Filter metadata keys").fill("dbt")
    assert metadata_value(page, "mesh/dbt_model") == snapshot.summary["mesh.dbt.model"] == model.unique_id
    assert float(metadata_value(page, "dbt/execution_time_s").replace(",", "")) > 0
