"""Contracts enforced at run time: Great Expectations suites as blocking checks that gate publication.

Write-audit-publish: the IO manager writes a contract-governed product to an Iceberg audit branch
(``audit-<run id>``); main, which every consumer reads, does not change. The blocking ``contract``
check then validates the branch with the product's expectation suite and, only if every
expectation passes, fast-forwards main to the audited snapshot. When one fails, the branch is
dropped, main is unchanged, the check result carries the failing expectations with sample
offending values, an HTML report is linked, and the run fails (the check is blocking, so nothing
downstream runs on unchecked data).

Great Expectations takes about 10 s to import and pandas about 1 s, and every code location imports
this module when it loads, so both are imported only inside the functions the check runs.
"""

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.contracts.model import CONTRACT_VERSION_PROPERTY, ProductContract
from mesh_assets.lakehouse.io_manager import IcebergIOManager, audit_branch, table_ref

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 5
# The name of the blocking check that audits a product against its contract (Python and dbt alike).
CONTRACT_CHECK = "contract"


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    sample: list[Any]
    details: str


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def expectations_for(contract: ProductContract) -> list[Any]:
    """The GX 1.x expectation suite of a contract."""
    import great_expectations as gx

    def expectation(name: str, **kwargs: Any) -> Any:
        # by name, as contracts name them (GX generates its expectation classes' exports)
        cls = getattr(gx.expectations, _camel(name), None)
        if cls is None:
            raise ValueError(f"{contract.path}: unknown Great Expectations expectation {name!r}")
        return cls(**kwargs)

    suite: list[Any] = [
        expectation("expect_table_columns_to_match_ordered_list", column_list=contract.column_names)
    ]
    if contract.min_rows is not None:
        suite.append(expectation("expect_table_row_count_to_be_between", min_value=contract.min_rows))
    for keys in contract.compound_keys:
        suite.append(expectation("expect_compound_columns_to_be_unique", column_list=list(keys)))
    for column in contract.columns:
        if column.required:
            suite.append(expectation("expect_column_values_to_not_be_null", column=column.name))
        if column.unique:
            suite.append(expectation("expect_column_values_to_be_unique", column=column.name))
        if column.allowed is not None:
            suite.append(
                expectation(
                    "expect_column_values_to_be_in_set", column=column.name, value_set=list(column.allowed)
                )
            )
        for rule in column.rules:
            suite.append(expectation(rule["expectation"], column=column.name, **rule["kwargs"]))
    return suite


def validate_frame(contract: ProductContract, frame: "pd.DataFrame") -> list[ExpectationOutcome]:
    """Run the contract's suite on ``frame`` with an ephemeral GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws tqdm progress bars into the run's logs otherwise
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    name = "_".join(contract.key.path)
    batch_definition = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(name=f"{name}_contract", expectations=expectations_for(contract))
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS}
    )
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        if config is None:
            continue
        kwargs = dict(config.kwargs)
        details = r.result or {}
        sample = details.get("partial_unexpected_list") or []
        if not r.success and not sample and "observed_value" in details:
            sample = [details["observed_value"]]
        extra = {k: v for k, v in kwargs.items() if k not in ("column", "batch_id")}
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=kwargs.get("column"),
                success=bool(r.success),
                unexpected_count=details.get("unexpected_count"),
                sample=[_jsonable(v) for v in sample[:SAMPLE_ROWS]],
                details=", ".join(f"{k}={_short(v)}" for k, v in extra.items()),
            )
        )
    return outcomes


REJECTIONS_EXPECTATION = "expect_rejections_within_contract"


def _named_column(reason: str, contract: ProductContract) -> str | None:
    """The column a rejection reason talks about: a contract column, else a raw snake_case column."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", reason)
    for word in words:
        if word in contract.column_names:
            return word
    for word in words:
        if "_" in word or word in ("value", "unit", "currency", "year"):
            return word
    return None


def rejection_outcomes(
    context: dg.AssetCheckExecutionContext, contract: ProductContract
) -> list[ExpectationOutcome]:
    """The rows this run's cleaning set aside, against the reasons the contract accepts."""
    event = context.instance.get_latest_materialization_event(contract.key)
    if event is None or event.run_id != context.run.run_id or event.asset_materialization is None:
        return []
    entry = event.asset_materialization.metadata.get("mesh/rejections_by_reason")
    value = entry.value if entry is not None else None
    rejections = {str(k): int(str(v)) for k, v in value.items()} if isinstance(value, dict) else {}
    unaccepted = contract.unaccepted_rejections(rejections)
    outcomes = [
        ExpectationOutcome(
            expectation=REJECTIONS_EXPECTATION,
            column=_named_column(reason, contract),
            success=False,
            unexpected_count=rows,
            sample=[reason],
            details="rows set aside for a reason the contract does not accept (acceptedRejections)",
        )
        for reason, rows in sorted(unaccepted.items())
    ]
    if not outcomes:
        accepted = sum(rejections.values())
        outcomes.append(
            ExpectationOutcome(
                REJECTIONS_EXPECTATION,
                None,
                True,
                0,
                [],
                f"{accepted} row(s) set aside, all for accepted reasons",
            )
        )
    return outcomes


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN: a missing value
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def write_report(
    contract: ProductContract,
    outcomes: list[ExpectationOutcome],
    run_id: str,
    snapshot: int | None,
    reports_dir: Path,
) -> Path:
    """A self-contained HTML report of one check run (the equivalent of GX Data Docs for one validation)."""
    folder = reports_dir / "_".join(contract.key.path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.html"
    failed = [o for o in outcomes if not o.success]
    rows = "\n".join(
        f"<tr class={'ok' if o.success else 'fail'}><td>{'pass' if o.success else 'FAIL'}</td>"
        f"<td>{html.escape(o.expectation)}</td><td>{html.escape(o.column or '(table)')}</td>"
        f"<td>{html.escape(o.details)}</td><td>{'' if o.unexpected_count is None else o.unexpected_count}</td>"
        f"<td>{html.escape(', '.join(map(str, o.sample)))}</td></tr>"
        for o in outcomes
    )
    title = f"{contract.key.to_user_string()} contract {contract.version}"
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
tr.fail{{background:#fde2e2}}tr.ok{{background:#e6f4ea}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Run {html.escape(run_id)} &middot; audited snapshot {snapshot} &middot; {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC &middot;
<b>{len(outcomes) - len(failed)} of {len(outcomes)} expectations passed</b></p>
<table><tr><th>result</th><th>expectation</th><th>column</th><th>arguments</th><th>unexpected</th><th>sample of offending values</th></tr>
{rows}</table><p>Contract: {html.escape(str(contract.path))}</p></body></html>
"""
    )
    return path


def _outcome_table(outcomes: list[ExpectationOutcome]) -> str:
    lines = ["| expectation | column | unexpected | sample |", "| --- | --- | ---: | --- |"]
    for o in outcomes:
        sample = ", ".join(map(str, o.sample))
        lines.append(f"| {o.expectation} | {o.column or '(table)'} | {o.unexpected_count or ''} | {sample} |")
    return "\n".join(lines)


def failure_summary(contract: ProductContract, failed: list[ExpectationOutcome], limit: int = 3) -> str:
    """One sentence naming each broken rule, its column and example offending values."""
    parts = []
    for o in failed[:limit]:
        count = f"{o.unexpected_count} row(s)" if o.unexpected_count else "failed"
        sample = f", e.g. {', '.join(map(str, o.sample[:3]))}" if o.sample else ""
        parts.append(f"{o.expectation} on {o.column or '(table)'}: {count}{sample}")
    more = f"; and {len(failed) - limit} more" if len(failed) > limit else ""
    return (
        f"{contract.key.to_user_string()} broke its contract v{contract.version} "
        f"({contract.path.name}): {'; '.join(parts)}{more}"
    )


@dataclass
class Audit:
    """The verdict of one contract audit: what the check result and the run's log carry."""

    contract: ProductContract
    outcomes: list[ExpectationOutcome]
    report: Path
    rows: int
    snapshot_id: int | None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def passed(self) -> bool:
        return not self.failed

    def metadata(self) -> dict[str, Any]:
        failed = self.failed
        metadata: dict[str, Any] = {
            "contract_version": self.contract.version,
            "expectations": len(self.outcomes),
            "failed_expectations": len(failed),
            "audited_rows": self.rows,
            "report": dg.MetadataValue.path(str(self.report)),
        }
        if self.snapshot_id is not None:
            metadata["audited_snapshot_id"] = dg.MetadataValue.int(self.snapshot_id)
        if failed:
            metadata["failures"] = dg.MetadataValue.md(_outcome_table(failed))
            metadata["failures_json"] = dg.MetadataValue.json(
                [
                    {
                        "expectation": o.expectation,
                        "column": o.column,
                        "unexpected": o.unexpected_count,
                        "sample": o.sample,
                    }
                    for o in failed
                ]
            )
        return metadata


def audit(
    contract: ProductContract,
    frame: "pd.DataFrame",
    *,
    run_id: str,
    reports_dir: Path,
    snapshot_id: int | None = None,
    extra: list[ExpectationOutcome] | None = None,
) -> Audit:
    """Validate ``frame`` against the contract and write its report: the one audit of every product,
    whether a Python asset staged it on an audit branch or a dbt model in its staging schema."""
    outcomes = validate_frame(contract, frame) + list(extra or [])
    report = write_report(contract, outcomes, run_id, snapshot_id, reports_dir)
    return Audit(contract, outcomes, report, len(frame), snapshot_id)


def contract_check(contract: ProductContract) -> dg.AssetChecksDefinition:
    """The blocking check that audits a product against its contract and publishes it."""

    @dg.asset_check(
        asset=contract.key,
        name=CONTRACT_CHECK,
        blocking=True,
        description=f"Audits the staged snapshot against {contract.path.name} (v{contract.version}) and publishes it.",
        required_resource_keys={"io_manager"},
    )
    def _contract(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        import pandas as pd

        io: IcebergIOManager = context.resources.io_manager
        tables = io.tables
        ref = table_ref(contract.key)
        branch = audit_branch(context.run.run_id)
        table = tables.load(ref)
        staged = table.snapshot_by_name(branch)
        audited = staged or table.current_snapshot()
        frame = tables.scan(table, snapshot=audited).to_pandas() if audited else pd.DataFrame()
        verdict = audit(
            contract,
            frame,
            run_id=context.run.run_id,
            reports_dir=io.settings.profile_home / "reports",
            snapshot_id=audited.snapshot_id if audited else None,
            extra=rejection_outcomes(context, contract),
        )
        metadata = verdict.metadata()
        if not verdict.passed:
            if staged is not None:
                tables.discard(ref, branch)
            metadata["published"] = False
            context.log.error(f"{failure_summary(contract, verdict.failed)}; main is unchanged")
        elif staged is not None:
            published = tables.publish(ref, branch, {CONTRACT_VERSION_PROPERTY: contract.version})
            metadata["published"] = True
            metadata["published_snapshot_id"] = dg.MetadataValue.int(published.snapshot_id)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=failure_summary(contract, verdict.failed) if not verdict.passed else None,
        )

    return _contract
