"""One function turns a domain's modules into its code location's ``dg.Definitions``.

A domain declares *what* it publishes (assets keyed ``[domain, name]``, checks, contracts, dbt
models) and the platform decides *how*: storage (the Iceberg IO manager of the profile), raw-input
access, group and kind tags, contract checks with write-audit-publish, the cross-domain trigger
sensor, table maintenance. Every domain gets a new capability by upgrading the platform, not by
editing its code. A domain's ``definitions.py`` is therefore a few lines::

    @dg.definitions
    def defs() -> dg.Definitions:
        return domain_definitions(assets)

This is an edge: the settings are read from the environment here, once, when the code location
loads (or passed in by a test), and reach every resource, check and sensor from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg

from mesh_assets.contracts.access import contract_path, read_grants
from mesh_assets.contracts.checks import contract_check
from mesh_assets.contracts.model import ProductContract, domain_contracts
from mesh_assets.dbt import dbt_project_assets, domain_project_dir
from mesh_assets.ingest.raw import RawInputs
from mesh_assets.lakehouse.access import encode_grants
from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.lakehouse.maintenance import maintenance_job, maintenance_schedule
from mesh_assets.lakehouse.trino import TrinoResource
from mesh_assets.orchestration.automation import DomainGraph, domain_sensors
from mesh_assets.orchestration.landing import LandingRawInputs, ingestion_job, landing_sensor
from mesh_assets.resources import MeshResource
from mesh_assets.settings import REPO_ROOT, MeshSettings, Profile, get_settings
from mesh_assets.workspace import domain_of


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


def _read_grants(domain: str, modules: Sequence[ModuleType], consumed: Sequence[dg.AssetKey]) -> str:
    """What the contracts of the products ``domain`` consumes let it read (JSON, for the IO manager).

    Domains sit side by side (``domains/<name>/contracts/<product>.odcs.yaml``): the contract of a
    consumed product is found beside this domain's folder, read as plain YAML (cheap at load).
    """
    if not modules or not consumed:
        return ""
    siblings = Path(str(modules[0].__file__)).parent.parent
    paths = [
        contract_path(siblings / k.path[0] / "contracts", k.path[-1]) for k in consumed if len(k.path) == 2
    ]
    return encode_grants(read_grants(domain, paths))


def resources_for(settings: MeshSettings, domain: str = "", read_grants: str = "") -> dict[str, Any]:
    """Resources by key for ``settings``: what a code location (or a test's ``dg.materialize``) binds.

    ``mesh`` carries the settings; the IO manager and Trino hold the same resource, so every part
    of a run sees one frozen settings object. A domain's location passes its name and the grants
    its consumed products' contracts give it: the IO manager checks them before every read/write.
    """
    mesh = MeshResource.of(settings)
    raw = RawInputs(root=str(settings.raw_dir))
    if settings.profile is Profile.LAKE and domain:
        # a run started by the domain's landing sensor reads its drop from the landing bucket
        raw = LandingRawInputs(root=str(settings.raw_dir), mesh=mesh, domain=domain)
    return {
        "mesh": mesh,
        "io_manager": IcebergIOManager(mesh=mesh, domain=domain, read_grants=read_grants),
        "raw": raw,
        "trino": TrinoResource(mesh=mesh),
    }


def _as_domain(settings: MeshSettings, domain: str) -> MeshSettings:
    """The settings ``domain``'s runs use: in ``lake``, its own principal (catalog role).

    A domain the stack has not provisioned yet (added after it started) keeps the platform's
    credentials until the next ``mesh infra up lake``, and says so when its location loads.
    """
    scoped = settings.for_domain(domain)
    if settings.profile is Profile.LAKE and not scoped.principal:
        dg.get_dagster_logger().warning(
            f"domain {domain!r} has no principal of its own in the lake yet: its runs use the platform's "
            "credentials until `mesh infra up lake` (or `mesh access provision`) provisions it"
        )
    return scoped


def domain_definitions(*modules: ModuleType, **options: Any) -> dg.Definitions:
    """:func:`build_domain_definitions` for the domain the modules' package is named after."""
    if not modules:
        raise DomainDefinitionError("domain_definitions needs the domain's asset module(s)")
    return build_domain_definitions(domain_of(modules[0]), *modules, **options)


def build_domain_definitions(
    domain: str,
    *modules: ModuleType,
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
    sensors: Sequence[dg.SensorDefinition] = (),
    dbt_project_dir: str | Path | None = None,
    settings: MeshSettings | None = None,
) -> dg.Definitions:
    """The code location of ``domain``: its assets and checks with the platform's resources.

    The domain's dbt project (``dbt_projects/<domain>``, or ``dbt_project_dir``) adds its marts as
    assets of the same location, from the manifest prepared at build time. ``settings`` default to
    the environment's, read here: a code location's load is one of the platform's edges.
    """
    settings = _as_domain(settings or get_settings(), domain)
    assets = [
        a
        for a in dg.load_assets_from_modules(modules, group_name=domain)
        if isinstance(a, dg.AssetsDefinition)
    ]
    contracts = domain_contracts(Path(str(modules[0].__file__)).parent / "contracts") if modules else {}
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
    graph = DomainGraph.of(assets)
    external = [dg.AssetSpec(key) for key in graph.consumed()]
    grants = _read_grants(domain, modules, graph.consumed())
    maintenance = maintenance_job(domain)
    landing: list[dg.SensorDefinition] = []
    if settings.profile is Profile.LAKE and (ingest := ingestion_job(domain, assets)) is not None:
        jobs = [*jobs, ingest]
        landing = [landing_sensor(domain, ingest, settings.trigger_interval)]
    return dg.Definitions(
        assets=[*assets, *external],
        asset_checks=[
            *dg.load_asset_checks_from_modules(modules),
            *(contract_check(c) for c in governed),
        ],
        jobs=[*jobs, maintenance],
        schedules=[*schedules, maintenance_schedule(maintenance)],
        sensors=[*sensors, *domain_sensors(domain, graph, settings.trigger_interval), *landing],
        resources=resources_for(settings, domain, grants),
        # Steps run inside the run's process: a domain's steps are small, and starting a Python
        # process per step (the multiprocess default) costs more than the step on a small machine.
        executor=dg.in_process_executor,
    )
