"""Trino enforces the contracts' access rules (generated at the stack's start, re-read every few seconds).

Against the real Trino of the lake stack, connecting as the people of ``governance/teams.yaml`` and
as the domains' principals (``mesh_<domain>``): a declared reader reads, anyone else is refused, a
domain cannot write another domain's table, and a changed contract (a reader dropped, a column
withheld, a row filter) applies after the refresh period without restarting Trino.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mesh_assets.contracts.access import load_policy, trino_rules, workspace_policy
from mesh_assets.settings import REPO_ROOT, MeshSettings

pytestmark = pytest.mark.lake

KEY = ["benchmarks", "country_regions"]
TABLE = "benchmarks.country_regions"
CONTRACTS = REPO_ROOT / "domains" / "benchmarks" / "contracts"
REFRESH_CEILING = 120  # the stack re-reads the rules every 5 s; a loaded machine may lag


@pytest.fixture(scope="module")
def published(lake_stack: MeshSettings) -> MeshSettings:
    """benchmarks/country_regions in the lake (published by its domain's own code, if not there yet)."""
    from mesh_assets.definitions import build_domain_definitions
    from mesh_assets.lakehouse.catalog import load_catalog

    if not load_catalog(lake_stack).table_exists(TABLE):
        defs = build_domain_definitions(
            "benchmarks", importlib.import_module("domains.benchmarks.assets"), settings=lake_stack
        )
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            asset_selection=[dg.AssetKey(KEY)], instance=dg.DagsterInstance.ephemeral()
        )
        assert result.success
    return lake_stack


def _connect(settings: MeshSettings, user: str, acting_as: str | None = None):
    """A connection of ``user``; ``acting_as``: impersonating that user (the client sends
    X-Trino-Original-User and X-Trino-User; the rules' ``impersonation`` section decides)."""
    import trino

    return trino.dbapi.connect(
        host=settings.host,
        port=settings.ports.trino,
        user=acting_as or user,
        http_headers={"X-Trino-Original-User": user} if acting_as else None,
        catalog=settings.trino_catalog,
        http_scheme="http",
        request_timeout=120,
    )


def sql_as(settings: MeshSettings, user: str, statement: str, acting_as: str | None = None) -> list[list]:
    conn = _connect(settings, user, acting_as)
    try:
        cur = conn.cursor()
        cur.execute(statement)
        return cur.fetchall()
    finally:
        conn.close()


def refused(settings: MeshSettings, user: str, statement: str) -> str:
    """The refusal Trino gives ``user`` for ``statement`` (fails the test when it runs)."""
    from trino.exceptions import TrinoUserError

    with pytest.raises(TrinoUserError) as caught:
        sql_as(settings, user, statement)
    assert "Access Denied" in str(caught.value), caught.value
    return str(caught.value)


def test_declared_readers_read_and_everyone_else_is_refused(published):
    count = f"SELECT count(*) FROM {TABLE}"
    [[rows]] = sql_as(published, "mesh", count)
    assert rows > 0
    assert sql_as(published, "ana.analyst", count) == [[rows]]  # climate-analysts: a declared reader
    assert sql_as(published, "mesh_companies", count) == [[rows]]  # domain:companies: a declared reader
    for user in ("pat.pm", "mesh_emissions", "somebody"):  # another team, an undeclared domain, a stranger
        assert "Cannot select from table" in refused(published, user, count) or user == "somebody"


def _latest_snapshot(settings: MeshSettings) -> int:
    [[snapshot]] = sql_as(
        settings,
        "mesh",
        'SELECT snapshot_id FROM "benchmarks"."country_regions$snapshots" ORDER BY committed_at DESC LIMIT 1',
    )
    return snapshot


def test_a_domain_cannot_write_another_domains_table(published):
    before = _latest_snapshot(published)
    [[rows]] = sql_as(published, "mesh", f"SELECT count(*) FROM {TABLE}")
    refused(published, "mesh_emissions", f"INSERT INTO {TABLE} SELECT * FROM {TABLE} LIMIT 1")
    refused(published, "mesh_companies", f"DELETE FROM {TABLE}")  # a reader is not a writer
    refused(published, "mesh_emissions", f"DROP TABLE {TABLE}")
    assert _latest_snapshot(published) == before
    assert sql_as(published, "mesh", f"SELECT count(*) FROM {TABLE}") == [[rows]]


def _rules_file(settings: MeshSettings) -> Path:
    path = settings.services_dir / "trino" / "etc" / "rules.json"
    assert path.is_file(), f"the stack wrote no rules at {path}"
    return path


def _trino_pid(settings: MeshSettings) -> str:
    return (settings.services_dir / "trino" / "run" / "trino.pid").read_text().strip()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.test")
    tmp.write_text(text)
    tmp.replace(path)


def _until(what: str, probe) -> None:
    deadline = time.monotonic() + REFRESH_CEILING
    while True:
        try:
            if probe():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {REFRESH_CEILING}s")
        time.sleep(1)


def test_a_contract_change_applies_after_the_refresh_without_a_restart(published, tmp_path):
    from trino.exceptions import TrinoUserError

    path = _rules_file(published)
    original = path.read_text()
    # the stack generated them from the workspace's contracts
    assert json.loads(original) == trino_rules(
        workspace_policy(REPO_ROOT / "workspace.yaml"),
        published.trino_catalog,
        orchestrator=published.trino_user,
        admins=["mesh"],
        monitors=["mesh-healthcheck"],
    )
    pid = _trino_pid(published)

    [[region]] = sql_as(published, "mesh", f"SELECT min(itr_region) FROM {TABLE}")
    # the benchmarks team changes the contract: companies no longer reads it; analysts lose a
    # column and see one region only (the first by name)
    folder = tmp_path / "benchmarks" / "contracts"
    shutil.copytree(CONTRACTS, folder)
    contract = folder / "country_regions.odcs.yaml"
    raw = yaml.safe_load(contract.read_text())
    raw["roles"] = [
        {
            "role": "climate-analysts",
            "access": "read",
            "customProperties": [
                {"property": "withheldColumns", "value": ["official_name"]},
                {"property": "rowFilter", "value": f"itr_region = '{region}'"},
            ],
        }
    ]
    contract.write_text(yaml.safe_dump(raw, sort_keys=False))
    others = {d: tmp_path for d in ("companies", "emissions", "portfolio_alignment")}
    changed = trino_rules(
        load_policy({"benchmarks": folder, **others}),
        published.trino_catalog,
        orchestrator=published.trino_user,
        admins=["mesh"],
        monitors=["mesh-healthcheck"],
    )
    count = f"SELECT count(*) FROM {TABLE}"

    def companies_refused() -> bool:
        try:
            sql_as(published, "mesh_companies", count)
        except TrinoUserError as exc:
            return "Access Denied" in str(exc)
        return False

    _write_atomically(path, json.dumps(changed, indent=2))
    try:
        _until("companies refused after its reader role was removed", companies_refused)
        refused(published, "ana.analyst", f"SELECT official_name FROM {TABLE}")
        seen = sql_as(published, "ana.analyst", f"SELECT iso2, itr_region FROM {TABLE}")
        assert seen and {r for _, r in seen} == {region}
        expected = sql_as(published, "mesh", f"SELECT count(*) FROM {TABLE} WHERE itr_region = '{region}'")
        assert [[len(seen)]] == expected
    finally:
        _write_atomically(path, original)
    _until("companies reads again once the contract lists it again", lambda: not companies_refused())
    assert _trino_pid(published) == pid  # no restart


def test_the_service_user_impersonates_domain_principals_only(published):
    """The orchestrator's service user may act as a domain's principal, and is then held to that
    domain's rules; no one else impersonates anyone, and nobody impersonates the service user."""
    from trino.exceptions import TrinoUserError

    settings = published
    service, reader, other = settings.trino_user, "mesh_companies", "mesh_emissions"
    assert sql_as(settings, service, "SELECT current_user", reader) == [[reader]]
    # acting as companies, the service reads what companies may read, and not more
    assert sql_as(settings, service, f"SELECT count(*) FROM {TABLE}", reader)[0][0] > 0
    with pytest.raises(TrinoUserError, match="Access Denied"):
        sql_as(settings, service, f"DELETE FROM {TABLE}", reader)
    for user, target in (
        (other, reader),
        (reader, service),
        (service, "ana.analyst"),
        ("ana.analyst", reader),
    ):
        with pytest.raises(TrinoUserError, match="Access Denied") as caught:
            sql_as(settings, user, "SELECT 1", target)
        assert "impersonate" in str(caught.value), (user, target, caught.value)
