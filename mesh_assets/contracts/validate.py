"""``mesh validate``: every contract against the code and against the last published data.

Reports, per domain of ``workspace.yaml``:
* products (assets) without a contract, and contracts without a product;
* contract files that do not parse as ODCS or use types the platform cannot enforce;
* for products already published in the profile's catalog: contract columns missing from the
  table, table columns missing from the contract, and columns whose type differs;
* breaking changes against the last published contract: a column removed or retyped needs a new
  major version (the version that last published is recorded on the table as
  ``mesh.contract-version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from mesh_assets.contracts.access import AccessPolicyError, load_policy
from mesh_assets.contracts.model import (
    CONTRACT_VERSION_PROPERTY,
    ContractError,
    ProductContract,
    load_contract,
)
from mesh_assets.settings import MeshSettings
from mesh_assets.workspace import locations


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "ok"
    domain: str
    product: str
    message: str


def _published_checks(contract: ProductContract, settings: MeshSettings, domain: str) -> list[Finding]:
    from mesh_assets.lakehouse.catalog import table_schema_and_properties

    product = contract.key.to_user_string()
    found = table_schema_and_properties(settings, ".".join(contract.key.path))
    if found is None:
        return []
    findings = []
    published, properties = found
    declared = {c.name: c.iceberg_type for c in contract.columns}
    published_version = properties.get(CONTRACT_VERSION_PROPERTY)
    published_major = int(published_version.split(".")[0]) if published_version else None
    breaking = []
    for name, kind in published.items():
        if name not in declared:
            breaking.append(f"column {name!r} removed")
        elif declared[name] != kind and (kind, declared[name]) not in {("int", "long"), ("float", "double")}:
            breaking.append(f"column {name!r} retyped {kind} -> {declared[name]}")
    added = [n for n in declared if n not in published]
    if breaking:
        if published_major is not None and contract.major > published_major:
            findings.append(
                Finding(
                    "ok",
                    domain,
                    product,
                    f"major version {contract.version} announces: {'; '.join(breaking)}",
                )
            )
        else:
            since = f" (published under {published_version})" if published_version else ""
            findings.append(
                Finding(
                    "error",
                    domain,
                    product,
                    f"breaking change{since}: {'; '.join(breaking)}: needs a new major version "
                    f"(> {published_major or contract.major}.x), or keep the column",
                )
            )
    if added:
        findings.append(
            Finding("error", domain, product, f"contract column(s) {added} missing from the published data")
        )
    return findings


def _access_findings(folders: dict[str, Path], consumption: dict[str, set[tuple[str, str]]]) -> list[Finding]:
    """Readers and columns the contracts name that do not exist; cross-domain reads no contract allows."""
    try:
        policy = load_policy(folders, consumption)
    except (AccessPolicyError, OSError) as exc:
        return [Finding("error", "governance", "access", str(exc))]
    return [
        Finding("error", product.split("/")[0], product, message) for product, message in policy.problems()
    ]


def validate(workspace_file: Path, settings: MeshSettings) -> list[Finding]:
    findings: list[Finding] = []
    folders: dict[str, Path] = {}
    consumption: dict[str, set[tuple[str, str]]] = {}
    for location in locations(workspace_file):
        domain, module_name = location.name, location.module_name
        try:
            module = location.import_module()
            defs = location.load()
        except Exception as exc:  # a broken contract or asset module stops the code location loading
            findings.append(Finding("error", domain, module_name, f"code location does not load: {exc}"))
            continue
        graph = defs.resolve_asset_graph()
        products = {
            k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable and k.path[0] == domain
        }
        # another location of a domain's package (its legacy DAGs) holds none of its contracts
        folder = Path(str(module.__file__)).parent / "contracts"
        if not location.owns_contracts:
            continue
        if folder.is_dir():
            folders[domain] = folder
            consumption[domain] = {
                (parent.path[0], parent.path[-1])
                for key in products
                for parent in graph.get(key).parent_keys
                if parent.path[0] != domain and len(parent.path) == 2
            }
        contracts: dict[dg.AssetKey, ProductContract] = {}
        for path in sorted(folder.glob("*.odcs.yaml")):
            try:
                contract = load_contract(path.resolve())
            except ContractError as exc:
                findings.append(Finding("error", domain, path.name, str(exc)))
                continue
            if contract.key.path[0] != domain:
                findings.append(
                    Finding("error", domain, path.name, f"contract is for domain {contract.key.path[0]!r}")
                )
                continue
            contracts[contract.key] = contract
        for key in sorted(products - set(contracts), key=lambda k: tuple(k.path)):
            findings.append(
                Finding(
                    "error",
                    domain,
                    key.to_user_string(),
                    f"no contract in {folder.relative_to(folder.parents[2])}",
                )
            )
        for key in sorted(set(contracts) - products, key=lambda k: tuple(k.path)):
            findings.append(
                Finding(
                    "error", domain, key.to_user_string(), "contract for a product the domain does not define"
                )
            )
        for key in sorted(set(contracts) & products, key=lambda k: tuple(k.path)):
            problems = _published_checks(contracts[key], settings, domain)
            findings.extend(problems)
            if not any(p.level == "error" for p in problems):
                findings.append(
                    Finding("ok", domain, key.to_user_string(), f"contract v{contracts[key].version}")
                )
    findings.extend(_access_findings(folders, consumption))
    return findings
