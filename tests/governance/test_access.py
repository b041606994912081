"""Access from the contracts: who reads and writes each product, checked by the platform in every profile.

The policy comes from the products' ODCS contracts (``roles``) and ``governance/teams.yaml``; the
platform's own checks run in the IO manager of each domain's code location, before any read or
write; ``mesh validate`` reports readers and columns that do not exist and cross-domain reads that
no contract allows; ``mesh access trino-rules`` writes Trino's file-based rules from the same policy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from mesh_assets.contracts.access import (
    AccessPolicy,
    load_policy,
    read_grants,
    trino_rules,
    workspace_policy,
)
from mesh_assets.lakehouse.access import AccessDenied, encode_grants
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.resources import MeshResource
from mesh_assets.settings import REPO_ROOT, MeshSettings

WORKSPACE = REPO_ROOT / "workspace.yaml"
PRODUCT = ["benchmarks", "country_regions"]
REAL_CONTRACT = REPO_ROOT / "domains" / "benchmarks" / "contracts" / "country_regions.odcs.yaml"
FRAME = pd.DataFrame(
    {"country_iso2": ["DE", "FR", "US", "JP"], "region": ["Europe", "Europe", "North America", "Asia"]}
)


# ---- the policy of the mesh's own contracts ------------------------------------------------------
def test_every_cross_domain_read_of_the_mesh_is_granted_by_a_contract():
    from mesh_assets.contracts.validate import validate

    findings = validate(WORKSPACE, MeshSettings.from_env("local"))
    assert [f for f in findings if f.level == "error"] == []
    policy = workspace_policy(WORKSPACE)
    assert {"benchmarks", "companies", "emissions", "portfolio_alignment"} <= set(policy.domains)
    assert policy.may_read("domain:companies", ("benchmarks", "country_regions")) is not None
    assert policy.may_read("domain:emissions", ("benchmarks", "country_regions")) is None
    assert policy.may_read("domain:benchmarks", ("benchmarks", "country_regions")) is not None  # owner


def _domain_copy(tmp_path: Path, roles: list[dict]) -> tuple[dict[str, Path], Path]:
    """The benchmarks contracts in a folder of their own, country_regions with ``roles``."""
    folder = tmp_path / "benchmarks" / "contracts"
    shutil.copytree(REAL_CONTRACT.parent, folder)
    path = folder / REAL_CONTRACT.name
    raw = yaml.safe_load(path.read_text())
    raw["roles"] = roles
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    others = {d: tmp_path for d in ("companies", "emissions", "portfolio_alignment")}  # no contracts
    return {"benchmarks": folder, **others}, path


@pytest.mark.parametrize(
    ("roles", "fragment"),
    [
        (
            [{"role": "astrologers", "access": "read"}],
            "reader 'astrologers' is neither a team of governance/teams.yaml",
        ),
        (
            [{"role": "domain:weather", "access": "read"}],
            "reader 'domain:weather' is not a domain of the workspace",
        ),
        (
            [
                {
                    "role": "climate-analysts",
                    "access": "read",
                    "customProperties": [{"property": "withheldColumns", "value": ["shoe_size"]}],
                }
            ],
            "withheldColumns of 'climate-analysts' names columns the product does not have: ['shoe_size']",
        ),
    ],
)
def test_validate_names_readers_and_columns_that_do_not_exist(tmp_path, roles, fragment):
    folders, path = _domain_copy(tmp_path, roles)
    problems = load_policy(folders).problems()
    assert any(fragment in message and str(path) in message for _, message in problems), problems


def test_a_cross_domain_read_no_contract_allows_is_reported_with_the_fix(tmp_path):
    folders, path = _domain_copy(tmp_path, [{"role": "climate-analysts", "access": "read"}])
    policy = load_policy(folders, {"companies": [("benchmarks", "country_regions")]})
    [(product, message)] = policy.problems()
    assert product == "benchmarks/country_regions"
    assert message.startswith("domain:companies may not read benchmarks/country_regions: its contract")
    assert str(path) in message and "- role: domain:companies" in message and "benchmarks domain" in message


# ---- the platform's checks before a read or a write (local profile) -------------------------------
def _io(settings: MeshSettings, domain: str, grants: str = "") -> IcebergIOManager:
    return IcebergIOManager(mesh=MeshResource.of(settings), domain=domain, read_grants=grants)


@dg.asset(key=PRODUCT)
def country_regions() -> pd.DataFrame:
    return FRAME


def _consumer(domain: str, columns: list[str] | None = None) -> dg.AssetsDefinition:
    metadata = {"columns": columns} if columns else None

    @dg.asset(key=[domain, "regions_seen"], ins={"regions": dg.AssetIn(key=PRODUCT, metadata=metadata)})
    def regions_seen(regions: pd.DataFrame) -> pd.DataFrame:
        return regions

    return regions_seen


@pytest.fixture
def published(mesh_home) -> MeshSettings:
    """benchmarks/country_regions published by its owner."""
    settings = MeshSettings.from_env("local")
    assert dg.materialize([country_regions], resources={"io_manager": _io(settings, "benchmarks")}).success
    return settings


def _read_as(settings, domain: str, grants: str, columns: list[str] | None = None):
    consumer = _consumer(domain, columns)
    return dg.materialize(
        [country_regions, consumer],
        selection=[consumer.key],
        resources={"io_manager": _io(settings, domain, grants)},
        raise_on_error=False,
    )


def _table_exists(settings: MeshSettings, name: str) -> bool:
    return load_catalog(settings).table_exists(name)


def test_a_domain_the_contract_does_not_list_is_refused_before_it_reads(published):
    grants = encode_grants(read_grants("emissions", [REAL_CONTRACT]))
    result = _read_as(published, "emissions", grants)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause else ""
    message = message or failure.step_failure_data.error.message
    assert (
        "domain:emissions may not read benchmarks/country_regions: its contract "
        "domains/benchmarks/contracts/country_regions.odcs.yaml does not list 'domain:emissions'"
    ) in message
    assert not _table_exists(published, "emissions.regions_seen")  # nothing was written


def test_a_declared_reader_reads(published):
    grants = encode_grants(read_grants("companies", [REAL_CONTRACT]))
    result = _read_as(published, "companies", grants)
    assert result.success
    seen = load_catalog(published).load_table("companies.regions_seen").scan().to_pandas()
    assert sorted(seen["country_iso2"]) == sorted(FRAME["country_iso2"])


def _contract_with(tmp_path: Path, grant: dict) -> Path:
    _, path = _domain_copy(tmp_path, [{"role": "domain:companies", "access": "read", **grant}])
    return path


def test_a_withheld_column_is_refused_unless_the_reader_leaves_it_out(published, tmp_path):
    path = _contract_with(
        tmp_path, {"customProperties": [{"property": "withheldColumns", "value": ["region"]}]}
    )
    grants = encode_grants(read_grants("companies", [path]))
    refused = _read_as(published, "companies", grants)
    assert not refused.success
    assert not _table_exists(published, "companies.regions_seen")
    errors = "\n".join(str(e.step_failure_data.error) for e in refused.all_events if e.is_step_failure)
    assert "domain:companies may not read ['region'] of benchmarks/country_regions" in errors
    allowed = _read_as(published, "companies", grants, columns=["country_iso2"])
    assert allowed.success
    seen = load_catalog(published).load_table("companies.regions_seen").scan().to_pandas()
    assert list(seen.columns) == ["country_iso2"]


def test_a_row_filter_limits_what_the_reader_sees(published, tmp_path):
    path = _contract_with(
        tmp_path, {"customProperties": [{"property": "rowFilter", "value": "region = 'Europe'"}]}
    )
    grants = encode_grants(read_grants("companies", [path]))
    assert _read_as(published, "companies", grants).success
    seen = load_catalog(published).load_table("companies.regions_seen").scan().to_pandas()
    assert sorted(seen["country_iso2"]) == ["DE", "FR"]


def test_a_domain_cannot_write_another_domains_product(published):
    before = load_catalog(published).load_table("benchmarks.country_regions").current_snapshot().snapshot_id

    @dg.asset(key=PRODUCT)
    def overwrite() -> pd.DataFrame:
        return FRAME.head(1)

    result = dg.materialize(
        [overwrite], resources={"io_manager": _io(published, "emissions")}, raise_on_error=False
    )
    assert not result.success
    errors = "\n".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
    assert "domain:emissions may not write benchmarks/country_regions: only the benchmarks domain" in errors
    after = load_catalog(published).load_table("benchmarks.country_regions")
    assert after.current_snapshot().snapshot_id == before
    assert len(after.scan().to_pandas()) == len(FRAME)


def test_a_domains_code_location_carries_its_grants():
    import importlib

    from mesh_assets.definitions import build_domain_definitions

    defs = build_domain_definitions("companies", importlib.import_module("domains.companies.assets"))
    io = defs.resources["io_manager"]
    assert io.domain == "companies"
    assert json.loads(io.read_grants) == {
        "benchmarks/country_regions": {"allowed": True, "message": "", "withheld": [], "row_filter": None}
    }


def test_access_denied_is_not_reworded_as_a_storage_error():
    assert not issubclass(AccessDenied, OSError)


# ---- Trino's rules from the same policy ----------------------------------------------------------
def _rules(policy: AccessPolicy) -> dict:
    return trino_rules(policy, "iceberg", orchestrator="mesh")


def _table_rules(rules: dict, schema: str, table: str) -> list[dict]:
    return [r for r in rules["tables"] if r.get("schema") == schema and r.get("table") == table]


def test_trino_rules_follow_the_contracts(tmp_path):
    policy = workspace_policy(WORKSPACE)
    rules = _rules(policy)
    country = _table_rules(rules, "benchmarks", "country_regions")
    by_user = {r["user"]: r for r in country}
    assert "OWNERSHIP" in by_user["mesh_benchmarks"]["privileges"]  # the owner domain
    assert by_user["mesh_companies"]["privileges"] == ["SELECT"]  # a declared reading domain
    assert by_user[r"ana\.analyst|chen\.analyst"]["privileges"] == ["SELECT"]  # the analysts' team
    assert "mesh_emissions" not in by_user  # not a reader: no rule, so Trino denies
    # the orchestrator acts as domain principals only; nobody else impersonates
    assert rules["impersonation"][0]["original_user"] == "mesh"
    assert "mesh_emissions" in rules["impersonation"][0]["new_user"].split("|")
    assert rules["impersonation"][-1] == {"original_user": ".*", "new_user": ".*", "allow": False}

    # a contract change changes the rules: a withheld column and a row filter for the team
    folders, _ = _domain_copy(
        tmp_path,
        [
            {
                "role": "climate-analysts",
                "access": "read",
                "customProperties": [
                    {"property": "withheldColumns", "value": ["region"]},
                    {"property": "rowFilter", "value": "region <> 'Asia'"},
                ],
            }
        ],
    )
    changed = _table_rules(_rules(load_policy(folders)), "benchmarks", "country_regions")
    [team] = [r for r in changed if r["user"] == r"ana\.analyst|chen\.analyst"]
    assert team["columns"] == [{"name": "region", "allow": False}]
    assert team["filter"] == "region <> 'Asia'"
    assert not any(r["user"] == "mesh_companies" for r in changed)  # companies no longer listed


def test_mesh_access_trino_rules_writes_the_file(tmp_path):
    out = tmp_path / "rules.json"
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mesh"), "access", "trino-rules", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rules = json.loads(out.read_text())
    assert rules == _rules(workspace_policy(WORKSPACE))
    assert not list(tmp_path.glob(".*tmp"))
