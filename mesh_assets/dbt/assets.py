"""A domain's dbt marts as Dagster assets, built from the prepared manifest (no dbt import)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_assets.contracts.checks import CONTRACT_CHECK
from mesh_assets.dbt.manifest import DbtModel, DbtProjectInfo, load_project

# Partition schemes an incremental model may declare in ``meta.mesh.partitioned_by``.
PARTITION_SCHEMES = {"yearly": ("0 0 1 1 *", "%Y"), "monthly": ("0 0 1 * *", "%Y-%m")}


def _partitions(model: DbtModel) -> dg.PartitionsDefinition | None:
    scheme = model.mesh.get("partitioned_by")
    if not scheme:
        return None
    if (
        scheme not in PARTITION_SCHEMES
        or not model.mesh.get("start")
        or not model.mesh.get("partition_column")
    ):
        raise ValueError(
            f"dbt model {model.name}: meta.mesh needs partitioned_by (one of {sorted(PARTITION_SCHEMES)}), "
            f"start and partition_column; got {model.mesh}"
        )
    cron, fmt = PARTITION_SCHEMES[scheme]
    end = model.mesh.get("end")  # exclusive; open-ended (up to now) when absent
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=cron,
        fmt=fmt,
        start=str(model.mesh["start"]),
        end=str(end) if end else None,
        timezone="UTC",
    )


def _spec(domain: str, model: DbtModel, project: DbtProjectInfo) -> dg.AssetSpec:
    metadata: dict[str, Any] = {
        "mesh/dbt_model": model.unique_id,
        "mesh/dbt_materialized": model.materialized,
        "mesh/dbt_sql": dg.MetadataValue.path(f"dbt_projects/{project.project_dir.name}/{model.sql_path}"),
    }
    if model.partitioned:
        metadata["partition_expr"] = model.mesh["partition_column"]
    return dg.AssetSpec(
        key=dg.AssetKey([domain, model.name]),
        deps=[dg.AssetKey(list(k)) for k in model.deps],
        description=model.description or None,
        group_name=domain,
        kinds={"dbt"},
        metadata=metadata,
        skippable=True,  # a model whose tests fail is not published: its output is skipped
    )


def _check_specs(domain: str, model: DbtModel, governed: bool) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey([domain, model.name])
    specs = [
        dg.AssetCheckSpec(
            name=t.name,
            asset=key,
            description=t.description,
            blocking=t.severity == "ERROR",
            metadata={"mesh/dbt_test": t.unique_id, "severity": t.severity},
        )
        for t in model.tests
    ]
    if governed:
        specs.append(
            dg.AssetCheckSpec(
                name=CONTRACT_CHECK,
                asset=key,
                blocking=True,
                description="Audits the staged model against its data contract before it is published.",
            )
        )
    return specs


def _multi_asset(
    domain: str,
    project: DbtProjectInfo,
    models: Sequence[DbtModel],
    governed: Mapping[dg.AssetKey, Any],
    partitions_def: dg.PartitionsDefinition | None,
    name: str,
) -> dg.AssetsDefinition:
    by_key = {dg.AssetKey([domain, m.name]): m for m in models}

    @dg.multi_asset(
        name=name,
        specs=[_spec(domain, m, project) for m in models],
        check_specs=[
            c for m in models for c in _check_specs(domain, m, dg.AssetKey([domain, m.name]) in governed)
        ],
        can_subset=True,
        partitions_def=partitions_def,
        required_resource_keys={"io_manager", "mesh"},
        op_tags={"mesh/dbt_project": project.name},
    )
    def _dbt(context: dg.AssetExecutionContext):
        # dbt, dagster-dbt, DuckDB and pandas load here, at run time, never when the location loads.
        from mesh_assets.dbt.runtime import DbtRun

        selected = [by_key[k] for k in sorted(context.selected_asset_keys, key=lambda k: tuple(k.path))]
        yield from DbtRun(context, domain, project, selected, governed, name).execute()

    return _dbt


def dbt_project_assets(
    domain: str,
    project_dir: str | Path,
    contracts: Mapping[dg.AssetKey, Any] | None = None,
) -> list[dg.AssetsDefinition]:
    """The marts of ``project_dir`` as assets of ``domain``: one multi-asset per partitioning.

    Models of ``contracts`` (keyed by asset key) get a blocking ``contract`` check, run on the
    staged model before it is published.
    """
    project = load_project(domain, Path(project_dir))
    governed = dict(contracts or {})
    groups: dict[tuple[str, str, str], list[DbtModel]] = {}
    for model in project.models:
        scheme = (
            str(model.mesh.get("partitioned_by", "")),
            str(model.mesh.get("start", "")),
            str(model.mesh.get("end", "")),
        )
        groups.setdefault(scheme, []).append(model)
    assets = []
    for (scheme, start, _), models in sorted(groups.items()):
        suffix = f"_{scheme}_{start}" if scheme else ""
        assets.append(
            _multi_asset(
                domain,
                project,
                models,
                governed,
                _partitions(models[0]),
                f"{domain}_dbt_{project.name}{suffix}",
            )
        )
    return assets
