"""`mesh validate`: contracts against the code and against the last published data."""

import shutil
import subprocess

import pytest
import yaml

from mesh_assets.contracts.validate import validate
from mesh_assets.settings import REPO_ROOT, get_settings

WORKSPACE = REPO_ROOT / "workspace.yaml"
# every product has its contract file: as many products as contract files in the domains
CONTRACTS = len(list(REPO_ROOT.glob("domains/*/contracts/*.odcs.yaml")))


def test_every_product_of_the_workspace_has_a_valid_contract(mesh_home):
    findings = validate(WORKSPACE, get_settings())
    errors = [f for f in findings if f.level == "error"]
    assert errors == []
    assert len({f.product for f in findings}) == CONTRACTS >= 13


def test_mesh_validate_command_exits_zero(mesh_home):
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/mesh"), "validate"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{CONTRACTS} products checked, 0 error(s)" in result.stdout


@pytest.fixture
def workspace_copy(tmp_path, monkeypatch):
    """A copy of the domains with their contracts, importable as `domains`, to break on purpose."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "domains", root / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(WORKSPACE, root / "workspace.yaml")
    monkeypatch.syspath_prepend(str(root))
    import sys

    for name in [m for m in sys.modules if m == "domains" or m.startswith("domains.")]:
        monkeypatch.delitem(sys.modules, name)
    return root


def test_asset_without_contract_and_orphan_contract_are_reported(mesh_home, workspace_copy):
    contracts = workspace_copy / "domains" / "emissions" / "contracts"
    (contracts / "production.odcs.yaml").unlink()
    orphan = (
        (contracts / "company_targets.odcs.yaml").read_text().replace("company_targets", "retired_targets")
    )
    (contracts / "retired_targets.odcs.yaml").write_text(orphan)
    findings = validate(workspace_copy / "workspace.yaml", get_settings())
    errors = {(f.product, f.message.split(" in ")[0].split(":")[0]) for f in findings if f.level == "error"}
    assert ("emissions/production", "no contract") in errors
    assert ("emissions/retired_targets", "contract for a product the domain does not define") in errors


def test_breaking_change_needs_a_new_major_version(mesh_home, workspace_copy):
    import dagster as dg

    from domains.benchmarks import definitions

    defs = definitions.defs()  # the location as its code server loads it, with this test's MESH_HOME
    key = dg.AssetKey(["benchmarks", "country_regions"])
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance, asset_selection=[key]).success

    path = workspace_copy / "domains" / "benchmarks" / "contracts" / "country_regions.odcs.yaml"
    contract = yaml.safe_load(path.read_text())
    dropped = contract["schema"][0]["properties"].pop()["name"]  # a breaking change for consumers
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    from mesh_assets.contracts.model import load_contract

    load_contract.cache_clear()
    findings = [
        f
        for f in validate(workspace_copy / "workspace.yaml", get_settings())
        if f.product == key.to_user_string()
    ]
    [error] = [f for f in findings if f.level == "error"]
    assert f"column {dropped!r} removed" in error.message and "needs a new major version" in error.message

    contract["version"] = "2.0.0"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    load_contract.cache_clear()
    findings = [
        f
        for f in validate(workspace_copy / "workspace.yaml", get_settings())
        if f.product == key.to_user_string()
    ]
    assert [f.level for f in findings] == ["ok", "ok"]
    assert "major version 2.0.0 announces" in findings[0].message
