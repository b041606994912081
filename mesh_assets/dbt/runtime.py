"""Running a domain's dbt models: build into staging, test, then publish to Iceberg.

dbt never writes a product's table. ``dbt build`` (through dagster-dbt's CLI resource) builds the
selected models into the domain's *staging* schema (a DuckDB file in ``local``, the Iceberg
schema ``<domain>_staging`` through Trino in ``lake``) and runs their tests there. Then, per model:
if its error-severity tests passed (and its contract, when it has one), the staged rows are written
to the Iceberg table ``<domain>.<model>`` in one commit by the same code the IO manager uses
(schema evolution, partition replacement, contract columns). Consumers therefore never see a model
that failed its tests, in either profile, and both profiles publish through one path.
"""

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from mesh_assets.contracts.checks import CONTRACT_CHECK, audit, failure_summary
from mesh_assets.dbt.cli import run_dbt
from mesh_assets.dbt.manifest import DbtModel, DbtProjectInfo
from mesh_assets.lakehouse import partitions as parts
from mesh_assets.lakehouse.catalog import read_table
from mesh_assets.lakehouse.io_manager import publish_product
from mesh_assets.settings import MeshSettings, Profile


def staging_schema(domain: str) -> str:
    return f"{domain}_staging"


def duckdb_path(settings: MeshSettings, group: str) -> Path:
    """The DuckDB file a group of dbt models is staged in (``local``); it holds incremental state.

    One file per multi-asset: DuckDB allows one writer per file, and the partitioned and the
    unpartitioned models of a domain may run at the same time.
    """
    return settings.profile_home / "dbt" / f"{group}.duckdb"


def target_path(settings: MeshSettings, group: str) -> Path:
    """dbt's target folder of a group: stable across runs, so dbt reuses its partial parse."""
    return settings.profile_home / "dbt" / group / "target"


@contextlib.contextmanager
def staging_lock(settings: MeshSettings, group: str) -> Iterator[None]:
    """Runs of one group take turns on its staging (DuckDB file, target folder)."""
    path = settings.profile_home / "dbt" / f"{group}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dbt_env(settings: MeshSettings, domain: str, group: str) -> dict[str, str]:
    """What ``dbt_projects/profiles.yml`` reads. No secrets: Trino on loopback needs none here."""
    env = {
        "MESH_PROFILE": settings.profile.value,
        "MESH_HOME": str(settings.home),
        "MESH_DBT_SCHEMA": staging_schema(domain),
    }
    if settings.profile is Profile.LOCAL:
        path = duckdb_path(settings, group)
        path.parent.mkdir(parents=True, exist_ok=True)
        env["MESH_DBT_DUCKDB_PATH"] = str(path)
    else:
        env |= {
            "MESH_DBT_TRINO_HOST": settings.host,
            "MESH_DBT_TRINO_PORT": str(settings.ports.trino),
            "MESH_DBT_TRINO_USER": settings.query_user,
            "MESH_DBT_TRINO_CATALOG": settings.trino_catalog,
        }
    return env


class DbtRun:
    """One ``dbt build`` of the selected models of a domain, and the publication of its results."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        domain: str,
        project: DbtProjectInfo,
        models: Sequence[DbtModel],
        contracts: Mapping[dg.AssetKey, Any],
        group: str,
    ) -> None:
        self.group = group
        self.context = context
        self.domain = domain
        self.project = project
        self.models = list(models)
        self.contracts = contracts
        self.settings: MeshSettings = context.resources.mesh.settings

    # ---- dbt -------------------------------------------------------------------------------
    def window_vars(self) -> dict[str, str]:
        """The partition window of an incremental model, as the vars its SQL filters on."""
        if not self.context.has_partition_key_range and not self.context.has_partition_key:
            return {}
        window = self.context.partition_time_window
        return {
            "mesh_window_start": window.start.date().isoformat(),
            "mesh_window_end": window.end.date().isoformat(),
        }

    def build(self) -> dict[str, dict[str, Any]]:
        """Run ``dbt build`` on the selection; results by unique id (models and tests).

        dbt's own lines go to a log file (named in the run's log); its warnings and errors, and a
        summary, go to the run's log, which the UI shows.
        """
        args = ["build", "--select", *(m.name for m in self.models)]
        variables = self.window_vars()
        if variables:
            args += ["--vars", json.dumps(variables)]
        log_path = self.settings.profile_home / "logs" / "dbt" / f"{self.context.run.run_id}-{self.group}.log"
        self.context.log.info(f"dbt {' '.join(args)} (target {self.settings.profile.value}); log {log_path}")
        target = target_path(self.settings, self.group)
        (target / "run_results.json").unlink(missing_ok=True)  # never read a previous run's results
        invocation = run_dbt(
            self.project.project_dir,
            args,
            target=self.settings.profile.value,
            env=self.settings.process_env(dbt_env(self.settings, self.domain, self.group)),
            target_path=target,
            log_path=log_path,
        )
        for message in invocation.messages("warn", "error"):
            self.context.log.warning(f"dbt: {message}")
        run_results = invocation.artifact("run_results.json")
        if run_results is None:  # dbt failed before it ran anything (parse or connection error)
            raise dg.Failure(
                f"dbt build of {self.project.name} did not run (exit {invocation.returncode}; log "
                f"{log_path}): {invocation.error()}"
            )
        results = {r["unique_id"]: r for r in run_results["results"]}
        statuses: dict[str, int] = {}
        for r in results.values():
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        self.context.log.info(f"dbt build of {self.project.name}: {statuses} ({log_path})")
        return results

    # ---- staging -> product ----------------------------------------------------------------
    def staged(self, model: DbtModel) -> pa.Table:
        """The model's rows in staging (its partition window only, for a partitioned model)."""
        schema = staging_schema(self.domain)
        if self.settings.profile is Profile.LOCAL:
            import duckdb

            with duckdb.connect(str(duckdb_path(self.settings, self.group)), read_only=True) as con:
                data = con.sql(f'select * from "{schema}"."{model.name}"').to_arrow_table()
        else:
            staged = read_table(self.settings, f"{schema}.{model.name}")
            if staged is None:
                raise dg.Failure(f"dbt reported {model.name} built, but {schema}.{model.name} does not exist")
            data = staged
        if model.partitioned:
            dims = self._dims(model)
            keys = list(self.context.partition_keys)
            data = parts.rows_in_partitions(dims, keys, data)
        return data

    def _dims(self, model: DbtModel) -> list[parts.Dimension]:
        partitions_def = self.context.assets_def.partitions_def
        if partitions_def is None:
            raise dg.Failure(f"dbt model {model.name} is partitioned but its asset has no partitions")
        return parts.dimensions(partitions_def, model.mesh["partition_column"])

    def publish(self, model: DbtModel, data: pa.Table, key: dg.AssetKey) -> dict[str, Any]:
        spec_meta = self.context.assets_def.specs_by_key[key].metadata
        contract = self.contracts.get(key)
        properties = {"mesh.dbt.model": model.unique_id}
        if contract is not None:
            from mesh_assets.contracts.model import CONTRACT_VERSION_PROPERTY

            properties[CONTRACT_VERSION_PROPERTY] = contract.version
        result, metadata = publish_product(
            self.settings,
            key,
            data,
            run_id=self.context.run.run_id,
            dims=self._dims(model) if model.partitioned else None,
            partition_keys=list(self.context.partition_keys) if model.partitioned else None,
            contract_columns=spec_meta.get("mesh/contract_columns"),
            properties=properties,
        )
        self.context.log.info(
            f"published {model.name}: {result.rows_written} rows at snapshot {result.snapshot_id}"
        )
        return metadata

    def contract_result(self, key: dg.AssetKey, data: pa.Table) -> dg.AssetCheckResult:
        contract = self.contracts[key]
        verdict = audit(
            contract,
            data.to_pandas(),
            run_id=self.context.run.run_id,
            reports_dir=self.settings.profile_home / "reports",
        )
        if not verdict.passed:
            self.context.log.error(f"{failure_summary(contract, verdict.failed)}; not published")
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=CONTRACT_CHECK,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={**verdict.metadata(), "published": verdict.passed},
            description=failure_summary(contract, verdict.failed) if not verdict.passed else None,
        )

    # ---- the step --------------------------------------------------------------------------
    def execute(self) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        with staging_lock(self.settings, self.group):
            yield from self._execute()

    def _execute(self) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        results = self.build()
        refused: list[str] = []
        for model in self.models:
            key = dg.AssetKey([self.domain, model.name])
            result = results.get(model.unique_id, {"status": "skipped", "message": "not run"})
            checks, tests_ok = self._test_results(model, key, result, results)
            if result["status"] != "success":
                yield from checks
                yield from self._contract_not_run(key)
                refused.append(f"{model.name} ({result['status']}: {result.get('message') or 'see dbt log'})")
                continue
            if not tests_ok:
                yield from checks
                yield from self._contract_not_run(key)
                refused.append(
                    f"{model.name} (failed dbt tests; staged in {staging_schema(self.domain)}, not published)"
                )
                continue
            data = self.staged(model)
            if key in self.contracts:
                verdict = self.contract_result(key, data)
                checks.append(verdict)
                if not verdict.passed:
                    yield from checks
                    refused.append(f"{model.name} (broke its contract; not published)")
                    continue
            metadata = self.publish(model, data, key)
            metadata["dbt/execution_time_s"] = float(result.get("execution_time") or 0.0)
            rows_affected = (result.get("adapter_response") or {}).get("rows_affected")
            if isinstance(rows_affected, int) and rows_affected >= 0:  # Trino reports it, DuckDB not always
                metadata["dbt/rows_affected"] = rows_affected
            if model.partitioned:
                window = self.window_vars()
                metadata["dbt/window"] = f"[{window['mesh_window_start']}, {window['mesh_window_end']})"
            metadata = {k: v for k, v in metadata.items() if v is not None}
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
            yield from checks
        if refused:
            raise dg.Failure(
                f"dbt models of {self.domain} not published: {'; '.join(refused)}. "
                "The published tables are unchanged."
            )

    def _test_results(
        self,
        model: DbtModel,
        key: dg.AssetKey,
        model_result: Mapping[str, Any],
        results: Mapping[str, Mapping[str, Any]],
    ) -> tuple[list[dg.AssetCheckResult], bool]:
        checks = []
        ok = True
        for test in model.tests:
            r = results.get(test.unique_id)
            status = r["status"] if r else "not run"
            passed = status == "pass"
            if not passed and test.severity == "ERROR":
                ok = False
            metadata: dict[str, Any] = {"status": status}
            if r:
                metadata["failures"] = r.get("failures")
                metadata["message"] = r.get("message")
            else:
                metadata["message"] = f"not run: the model {model_result.get('status')}"
            checks.append(
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name=test.name,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR
                    if test.severity == "ERROR"
                    else dg.AssetCheckSeverity.WARN,
                    metadata={k: v for k, v in metadata.items() if v is not None},
                )
            )
        return checks, ok

    def _contract_not_run(self, key: dg.AssetKey) -> list[dg.AssetCheckResult]:
        if key not in self.contracts:
            return []
        return [
            dg.AssetCheckResult(
                asset_key=key,
                check_name=CONTRACT_CHECK,
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"published": False, "message": "not audited: the dbt model or its tests failed"},
            )
        ]
