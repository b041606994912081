"""One function turns a domain's modules into its code location's ``dg.Definitions``.

A domain declares *what* it publishes (assets keyed ``[domain, name]``, checks) and the
platform decides *how*: storage (the Iceberg IO manager of the active profile), raw-input access,
group and kind tags. Later capabilities (contracts, sensors on consumed products, maintenance
jobs) plug in here, so every domain gets them by upgrading the platform, not by editing code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import dagster as dg

from mesh_assets.contracts.checks import contract_check
from mesh_assets.contracts.model import ProductContract, domain_contracts
from mesh_assets.dbt import dbt_project_assets, domain_project_dir
from mesh_assets.lakehouse.maintenance import maintenance_job, maintenance_schedule
from mesh_assets.orchestration.automation import domain_sensors
from mesh_assets.resources import resources_for
from mesh_assets.settings import REPO_ROOT


class DomainDefinitionError(ValueError):
    """A domain's assets are not declared the way the mesh requires."""


def _check_keys(domain: str, assets: Sequence[dg.AssetsDefinition]) -> None:
    unprefixed = sorted(
        f"{key.to_user_string()} <- {dep.to_user_string()}"
        for a in assets
        for key, deps in a.asset_deps.items()
        for dep in deps
        if len(dep.path) < 2
    )
    if unprefixed:
        raise DomainDefinitionError(
            f"domain {domain!r} reads inputs without a domain prefix: {unprefixed}. Name the upstream "
            f"explicitly: ins={{'<name>': dg.AssetIn(key_prefix={domain!r})}} for this domain's own assets, "
            "dg.AssetIn(key=['<domain>', '<name>']) for another domain's."
        )
    wrong = sorted(
        key.to_user_string() for a in assets for key in a.keys if key.path[0] != domain or len(key.path) < 2
    )
    if wrong:
        raise DomainDefinitionError(
            f"domain {domain!r} declares assets outside its namespace: {wrong}. "
            f"Key every asset [{domain!r}, name] (key_prefix={domain!r})."
        )


def _governed(spec: dg.AssetSpec, domain: str, contract: ProductContract | None) -> dg.AssetSpec:
    """Platform tags for every product; for a product with a contract, what the contract declares."""
    spec = spec.merge_attributes(kinds={"iceberg"}, tags={"mesh/domain": domain})
    if contract is None:
        return spec
    spec = spec.merge_attributes(
        owners=list(contract.owners),
        tags={"mesh/contract_version": contract.version, "mesh/contract_status": contract.status},
        metadata={
            "dagster/column_schema": contract.column_schema(),
            "mesh/contract": dg.MetadataValue.path(
                str(
                    contract.path.relative_to(REPO_ROOT)
                    if contract.path.is_relative_to(REPO_ROOT)
                    else contract.path
                )
            ),
            "mesh/readers": ", ".join(contract.readers),
            # read by the IO manager: enforce the contract's columns, stage on an audit branch
            "mesh/contract_columns": contract.enforced_columns(),
            "mesh/wap": True,
        },
    )
    if contract.freshness is not None:
        # The SLA's latency: Dagster marks the product overdue (warn at 80 %) in the UI.
        spec = spec.replace_attributes(
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=contract.freshness, warn_window=contract.freshness * 0.8
            )
        )
    if not spec.description and contract.description:
        spec = spec.replace_attributes(description=contract.description)
    return spec


def consumed_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Upstream keys the domain reads but does not define: products of other domains."""
    defined = {key for a in assets for key in a.keys}
    return sorted(
        {dep for a in assets for deps in a.asset_deps.values() for dep in deps} - defined,
        key=lambda k: k.path,
    )


def build_domain_definitions(
    domain: str,
    *modules: ModuleType,
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
    sensors: Sequence[dg.SensorDefinition] = (),
    dbt_project_dir: str | Path | None = None,
) -> dg.Definitions:
    """The code location of ``domain``: its assets and checks with the platform's resources.

    The domain's dbt project (``dbt_projects/<domain>``, or ``dbt_project_dir``) adds its marts as
    assets of the same location, from the manifest prepared at build time.
    """
    assets = [
        a
        for a in dg.load_assets_from_modules(modules, group_name=domain)
        if isinstance(a, dg.AssetsDefinition)
    ]
    contracts = domain_contracts(Path(modules[0].__file__).parent / "contracts") if modules else {}
    project_dir = Path(dbt_project_dir) if dbt_project_dir else domain_project_dir(domain)
    dbt_assets = dbt_project_assets(domain, project_dir, contracts) if project_dir else []
    # dbt models run their contract inside the dbt step, before they are published
    dbt_keys = {key for a in dbt_assets for key in a.keys}
    assets = [*assets, *dbt_assets]
    _check_keys(domain, assets)
    assets = list(dg.map_asset_specs(lambda spec: _governed(spec, domain, contracts.get(spec.key)), assets))
    governed = [contracts[key] for a in assets for key in a.keys if key in contracts and key not in dbt_keys]
    # Products of other domains appear here as external specs: the code location loads alone,
    # and the workspace joins them to their producer, so lineage crosses code locations.
    external = [dg.AssetSpec(key) for key in consumed_keys(assets)]
    maintenance = maintenance_job(domain)
    return dg.Definitions(
        assets=[*assets, *external],
        asset_checks=[
            *dg.load_asset_checks_from_modules(modules),
            *(contract_check(c) for c in governed),
        ],
        jobs=[*jobs, maintenance],
        schedules=[*schedules, maintenance_schedule(maintenance)],
        sensors=[*sensors, *domain_sensors(domain, assets)],
        resources=resources_for(),
        # Steps run inside the run's process: a domain's steps are small, and starting a Python
        # process per step (the multiprocess default) costs more than the step on a small machine.
        executor=dg.in_process_executor,
    )
