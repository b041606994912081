"""Corrupted copies of the sample inputs never reach a published table.

Issue: "Feed corrupted copies of the sample inputs: wrong types, null keys, duplicate keys,
out-of-range values, unknown units, missing columns, empty files, non-UTF-8 bytes. Each gives a
clear error, or a failed check that names the rule and the column, and the published table stays
unchanged."

One module-scoped mesh (own MESH_HOME, ``MESH_RAW_DIR`` pointing at a copy of ``data/raw``)
publishes each product under test once, from the good files. Every case then corrupts one file of
the copy, re-runs the product and asserts: the run failed; a step error names the file (and the
column) or the blocking ``contract`` check failed with an expectation on the column; main still
points at the published snapshot with the same rows, and no ``audit-*`` branch is left. The file,
the table's main and its branches are restored after each case, so cases do not depend on each
other.

Rows a transform sets aside are counted by reason; a reason the product's contract does not list
under ``acceptedRejections`` (a known quirk of the source) fails the check as
``expect_rejections_within_contract`` with the column the reason names, so bad rows are never
silently filtered out of a product.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from mesh_assets.definitions import build_domain_definitions
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import REPO_ROOT, get_settings

SAMPLE = REPO_ROOT / "data" / "raw"
FUNDAMENTALS = "itr-sample/fundamentals.csv"
EMISSIONS = "itr-sample/emissions.csv"
TARGETS = "itr-sample/targets.csv"
OECD_ISO = "itr-benchmarks/oecd_iso.csv"
PRODUCTION_JSON = "itr-benchmarks/benchmark_production_OECM.json"

# product -> the products it reads (published first, from the good files)
UPSTREAM: dict[str, tuple[str, ...]] = {
    "benchmarks/country_regions": (),
    "benchmarks/production_pathways": (),
    "companies/company_master": ("benchmarks/country_regions",),
    "emissions/reported_emissions": (),
    "emissions/company_targets": (),
}


# --------------------------------------------------------------------------------------------------
# the mesh under test
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Published:
    snapshot_id: int
    rows: pa.Table


class Mesh:
    """Domain definitions built against the copied raw files, and the published baselines."""

    def __init__(self, raw: Path, instance: dg.DagsterInstance) -> None:
        assert get_settings().raw_dir == raw.resolve()
        self.raw = raw
        self.instance = instance
        # Built here, not imported from domains/<d>/definitions.py: `defs` there resolves
        # MESH_RAW_DIR once, when the module is first imported.
        self.defs = {
            domain: build_domain_definitions(domain, importlib.import_module(f"domains.{domain}.assets"))
            for domain in ("benchmarks", "companies", "emissions")
        }
        self.baselines: dict[str, Published] = {}

    def run(self, product: str) -> dg.ExecuteInProcessResult:
        domain = product.split("/")[0]
        job = self.defs[domain].resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=self.instance,
            asset_selection=[dg.AssetKey(product.split("/"))],
            raise_on_error=False,
        )

    @staticmethod
    def table(product: str):
        return load_catalog(get_settings()).load_table(product.replace("/", "."))

    def baseline(self, product: str) -> Published:
        """``product`` published from the good files (once per module)."""
        if product not in self.baselines:
            for upstream in UPSTREAM[product]:
                self.baseline(upstream)
            result = self.run(product)
            assert result.success, f"the good sample does not publish {product}"
            [evaluation] = result.get_asset_check_evaluations()
            assert evaluation.passed and evaluation.metadata["published"].value is True
            table = self.table(product)
            assert list(table.refs()) == ["main"]
            rows = table.scan().to_arrow()
            assert rows.num_rows > 0
            self.baselines[product] = Published(table.current_snapshot().snapshot_id, rows)
        return self.baselines[product]

    def restore(self, product: str, relative: str) -> None:
        """Put the good file back; drop leftover audit branches; main back to the baseline."""
        target = self.raw / relative
        target.unlink(missing_ok=True)
        shutil.copy2(SAMPLE / relative, target)
        table = self.table(product)
        leftover = [name for name in table.refs() if name != "main"]
        if leftover:
            with table.manage_snapshots() as manage:
                for name in leftover:
                    manage.remove_branch(name)
            table = table.refresh()
        published = self.baselines[product].snapshot_id
        if table.current_snapshot().snapshot_id != published:
            table.manage_snapshots().set_current_snapshot(published).commit()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("bad_inputs")
    raw = root / "raw"
    shutil.copytree(SAMPLE, raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(root / "mesh"))
        mp.setenv("MESH_PROFILE", "local")
        mp.setenv("MESH_RAW_DIR", str(raw))
        mp.delenv("DAGSTER_HOME", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            yield Mesh(raw, instance)


# --------------------------------------------------------------------------------------------------
# corruptions (each takes the root of the copied raw files)
# --------------------------------------------------------------------------------------------------
Corruption = Callable[[Path], None]


def _read(path: Path) -> pd.DataFrame:
    # all text, empty stays empty: rewriting an untouched file reproduces its bytes
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def edit_csv(relative: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Corruption:
    def corrupt(root: Path) -> None:
        path = root / relative
        change(_read(path)).to_csv(path, index=False)

    return corrupt


def set_cell(relative: str, column: str, value: str, row: int = 0) -> Corruption:
    """Cell ``column`` of data row ``row`` becomes ``value`` ("" = missing)."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        assert column in frame.columns and frame.loc[row, column] != value
        frame.loc[row, column] = value
        return frame

    return edit_csv(relative, change)


def set_every_nth(relative: str, column: str, value: str, n: int) -> Corruption:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index % n == 0, column] = value
        return frame

    return edit_csv(relative, change)


def drop_column(relative: str, column: str) -> Corruption:
    return edit_csv(relative, lambda frame: frame.drop(columns=[column]))


def duplicate_row(relative: str, row: int = 0, **changes: str) -> Corruption:
    """Append a copy of data row ``row`` (same key), with ``changes`` to other columns."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        copy = frame.iloc[[row]].assign(**changes)
        return pd.concat([frame, copy], ignore_index=True)

    return edit_csv(relative, change)


def rewrite_bytes(relative: str, change: Callable[[bytes], bytes]) -> Corruption:
    def corrupt(root: Path) -> None:
        path = root / relative
        path.write_bytes(change(path.read_bytes()))

    return corrupt


def header_only(data: bytes) -> bytes:
    return data.split(b"\n", 1)[0] + b"\n"


def latin1_in_first_row(data: bytes) -> bytes:
    """An e-acute as Latin-1 (0xE9) in the first data row, as a spreadsheet export would write it."""
    header, rest = data.split(b"\n", 1)
    return header + b"\n" + b"\xe9" + rest


def delete(relative: str) -> Corruption:
    return lambda root: (root / relative).unlink()


# --------------------------------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One corruption of one file, and what must stop it.

    ``error``: a step error whose message contains every fragment (the file, the column, the rule).
    ``check``: (expectation, column) of a failed expectation of the ``contract`` check; expectation
    None = any expectation on that column. When both are given, either one is enough.
    ``gap``: what the platform does today instead (the case is a strict xfail).
    """

    id: str
    product: str
    file: str
    corrupt: Corruption
    error: tuple[str, ...] = ()
    check: tuple[str | None, str | None] | None = None
    gap: str | None = None

    def param(self):
        marks = [pytest.mark.xfail(strict=True, reason=self.gap)] if self.gap else []
        return pytest.param(self, id=self.id, marks=marks)


def _silently_dropped(where: str, reason: str) -> str:
    return (
        f"{where} drops the row and counts it in mesh/rejections_by_reason as {reason!r}; "
        "the run succeeds and publishes the other rows (no error, no failed check)"
    )


_NO_REQUIRED_COLUMNS = "the asset calls raw.read_csv without required_columns, so no RawInputError; "
_EMPTY_WRITE = (
    "the 0-row output reaches the IO manager: pyiceberg bin_pack_arrow_table raises a bare "
    "ZeroDivisionError (mesh_assets/lakehouse/tables.py:338 _stage_files) and the audit branch "
    "created at tables.py:214 (_ensure_branch) is left behind"
)

CASES = [
    # ---- wrong types: text in a numeric column -------------------------------------------------
    Case(
        "wrong-type-fundamentals-market_cap",
        "companies/company_master",
        FUNDAMENTALS,
        set_cell(FUNDAMENTALS, "market_cap", "lots"),
        error=(FUNDAMENTALS, "market_cap"),
        check=(None, "market_cap_eur"),
    ),
    Case(
        "wrong-type-emissions-value",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "value", "n/a"),
        error=(EMISSIONS, "value"),
        check=("expect_rejections_within_contract", "value"),
    ),
    Case(
        "wrong-type-targets-target_reduction_ambition",
        "emissions/company_targets",
        TARGETS,
        set_cell(TARGETS, "target_reduction_ambition", "high"),
        error=(TARGETS, "target_reduction_ambition"),
        check=(None, "reduction_ambition"),
    ),
    # ---- null keys -------------------------------------------------------------------------------
    Case(
        "null-key-fundamentals-company_id",
        "companies/company_master",
        FUNDAMENTALS,
        set_cell(FUNDAMENTALS, "company_id", ""),
        error=(FUNDAMENTALS, "company_id"),
        check=(None, "company_id"),
    ),
    Case(
        "null-key-emissions-company_id",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "company_id", ""),
        error=(EMISSIONS, "company_id"),
        check=(None, "company_id"),
    ),
    Case(  # a required column that is not a key passes through the transform: the check stops it
        "null-required-emissions-company_name",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "company_name", ""),
        check=("expect_column_values_to_not_be_null", "company_name"),
    ),
    # ---- duplicate keys --------------------------------------------------------------------------
    Case(
        "duplicate-key-fundamentals-company_id",
        "companies/company_master",
        FUNDAMENTALS,
        duplicate_row(FUNDAMENTALS, company_name="Imposter Corp.", market_cap="1.0E12"),
        error=(FUNDAMENTALS, "company_id"),
        check=(None, "company_id"),
    ),
    # ---- out-of-range values ---------------------------------------------------------------------
    Case(
        "out-of-range-targets-target_reduction_ambition",
        "emissions/company_targets",
        TARGETS,
        set_cell(TARGETS, "target_reduction_ambition", "1.5"),
        error=(TARGETS, "target_reduction_ambition"),
        check=("expect_rejections_within_contract", "target_reduction_ambition"),
    ),
    Case(
        "out-of-range-targets-target_year",
        "emissions/company_targets",
        TARGETS,
        set_cell(TARGETS, "target_year", "2300"),
        check=("expect_column_values_to_be_between", "target_year"),
    ),
    Case(
        "out-of-range-targets-negative-base_year_qty",
        "emissions/company_targets",
        TARGETS,
        set_cell(TARGETS, "target_base_year_qty", "-0.674"),
        check=("expect_column_values_to_be_between", "base_year_qty"),
    ),
    Case(
        "out-of-range-emissions-year",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "year", "3017"),
        check=("expect_column_values_to_be_between", "year"),
    ),
    Case(
        "out-of-range-emissions-negative-value",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "value", "-10515907"),
        error=(EMISSIONS, "value"),
        check=("expect_rejections_within_contract", "value"),
    ),
    Case(  # a third of the targets out of range: set aside for a reason the contract does not accept
        "out-of-range-targets-every-3rd-ambition",
        "emissions/company_targets",
        TARGETS,
        set_every_nth(TARGETS, "target_reduction_ambition", "1.5", 3),
        check=("expect_rejections_within_contract", "target_reduction_ambition"),
    ),
    # ---- unknown units ---------------------------------------------------------------------------
    Case(
        "unknown-unit-emissions-unit",
        "emissions/reported_emissions",
        EMISSIONS,
        set_cell(EMISSIONS, "unit", "furlongs CO2e"),
        error=(EMISSIONS, "furlongs CO2e"),
        check=("expect_rejections_within_contract", "unit"),
    ),
    Case(
        "unknown-unit-targets-target_base_year_unit",
        "emissions/company_targets",
        TARGETS,
        set_cell(TARGETS, "target_base_year_unit", "furlongs CO2e/MWh"),
        error=(TARGETS, "furlongs CO2e/MWh"),
        check=(None, "unit"),
    ),
    Case(  # the currency is a unit of the master: unknown -> currency missing -> required-column check
        "unknown-unit-fundamentals-currency",
        "companies/company_master",
        FUNDAMENTALS,
        set_cell(FUNDAMENTALS, "currency", "XYZ"),
        check=("expect_column_values_to_not_be_null", "currency"),
    ),
    # ---- missing columns -------------------------------------------------------------------------
    Case(
        "missing-column-fundamentals-company_id",
        "companies/company_master",
        FUNDAMENTALS,
        drop_column(FUNDAMENTALS, "company_id"),
        error=(FUNDAMENTALS, "company_id"),
    ),
    Case(
        "missing-column-fundamentals-currency",
        "companies/company_master",
        FUNDAMENTALS,
        drop_column(FUNDAMENTALS, "currency"),
        error=(FUNDAMENTALS, "currency"),
        check=("expect_column_values_to_not_be_null", "currency"),
    ),
    Case(
        "missing-column-emissions-value",
        "emissions/reported_emissions",
        EMISSIONS,
        drop_column(EMISSIONS, "value"),
        error=(EMISSIONS, "value"),
    ),
    Case(
        "missing-column-emissions-unit",
        "emissions/reported_emissions",
        EMISSIONS,
        drop_column(EMISSIONS, "unit"),
        error=(EMISSIONS, "unit"),
    ),
    Case(
        "missing-column-targets-target_reduction_ambition",
        "emissions/company_targets",
        TARGETS,
        drop_column(TARGETS, "target_reduction_ambition"),
        error=(TARGETS, "target_reduction_ambition"),
    ),
    # ---- empty files -----------------------------------------------------------------------------
    Case(
        "empty-file-fundamentals",
        "companies/company_master",
        FUNDAMENTALS,
        rewrite_bytes(FUNDAMENTALS, lambda _: b""),
        error=(f"raw input {FUNDAMENTALS!r} is empty",),
    ),
    Case(
        "blank-file-targets",
        "emissions/company_targets",
        TARGETS,
        rewrite_bytes(TARGETS, lambda _: b" \n\n"),
        error=(f"raw input {TARGETS!r} is empty",),
    ),
    Case(
        "header-only-fundamentals",
        "companies/company_master",
        FUNDAMENTALS,
        rewrite_bytes(FUNDAMENTALS, header_only),
        error=(FUNDAMENTALS,),
        check=("expect_table_row_count_to_be_between", None),
    ),
    Case(
        "header-only-emissions",
        "emissions/reported_emissions",
        EMISSIONS,
        rewrite_bytes(EMISSIONS, header_only),
        error=(EMISSIONS,),
        check=("expect_table_row_count_to_be_between", None),
    ),
    # ---- bytes that are not UTF-8 ----------------------------------------------------------------
    Case(
        "non-utf8-fundamentals",
        "companies/company_master",
        FUNDAMENTALS,
        rewrite_bytes(FUNDAMENTALS, latin1_in_first_row),
        error=(f"raw input {FUNDAMENTALS!r} is not valid UTF-8", "byte 0xe9", "(line 2)"),
    ),
    Case(
        "non-utf8-emissions",
        "emissions/reported_emissions",
        EMISSIONS,
        rewrite_bytes(EMISSIONS, latin1_in_first_row),
        error=(f"raw input {EMISSIONS!r} is not valid UTF-8", "byte 0xe9", "(line 2)"),
    ),
    Case(
        "non-utf8-benchmarks-oecd_iso",
        "benchmarks/country_regions",
        OECD_ISO,
        rewrite_bytes(OECD_ISO, latin1_in_first_row),
        error=(f"raw input {OECD_ISO!r} is not valid UTF-8", "(line 2)"),
    ),
    Case(
        "non-utf8-benchmarks-production-json",
        "benchmarks/production_pathways",
        PRODUCTION_JSON,
        rewrite_bytes(PRODUCTION_JSON, lambda data: data.replace(b"{", b"{\xe9", 1)),
        error=(f"raw input {PRODUCTION_JSON!r} is not valid UTF-8",),
    ),
    # ---- more: missing file, malformed CSV, truncated JSON ---------------------------------------
    Case(
        "missing-file-fundamentals",
        "companies/company_master",
        FUNDAMENTALS,
        delete(FUNDAMENTALS),
        error=(f"raw input {FUNDAMENTALS!r} not found", "MESH_RAW_DIR"),
    ),
    Case(
        "ragged-row-fundamentals",
        "companies/company_master",
        FUNDAMENTALS,
        rewrite_bytes(FUNDAMENTALS, lambda data: data + b",".join([b"x"] * 24) + b"\n"),
        error=(f"raw input {FUNDAMENTALS!r} cannot be parsed as CSV", "Expected 20 fields"),
    ),
    Case(
        "truncated-json-benchmarks-production",
        "benchmarks/production_pathways",
        PRODUCTION_JSON,
        rewrite_bytes(PRODUCTION_JSON, lambda data: data[: len(data) // 2]),
        error=(f"raw input {PRODUCTION_JSON!r} is not valid JSON",),
    ),
]


# --------------------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------------------
def _step_errors(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        messages.append((error.cause or error).message.strip())
    return messages


def _contract_failures(result: dg.ExecuteInProcessResult, product: str) -> list[dict] | None:
    """The failures_json of a failed ``contract`` check of ``product``; None when it did not fail."""
    key = dg.AssetKey(product.split("/"))
    evaluations = [
        e for e in result.get_asset_check_evaluations() if e.asset_key == key and e.check_name == "contract"
    ]
    if not evaluations or evaluations[0].passed:
        return None
    [evaluation] = evaluations
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["published"] is False
    assert Path(metadata["report"]).is_file()
    return metadata["failures_json"]


def assert_stopped_clearly(result: dg.ExecuteInProcessResult, case: Case) -> None:
    errors = _step_errors(result)
    failures = _contract_failures(result, case.product)
    assert not result.success, f"the run published the corrupted {case.file}"
    named_by_error = bool(case.error) and any(all(f in m for f in case.error) for m in errors)
    named_by_check = (
        case.check is not None
        and failures is not None
        and any(f["column"] == case.check[1] and case.check[0] in (None, f["expectation"]) for f in failures)
    )
    assert named_by_error or named_by_check, (
        f"expected an error naming {case.error} or a failed expectation {case.check}; "
        f"got errors {errors} and contract failures {failures}"
    )


def assert_unchanged(mesh: Mesh, product: str, published: Published) -> None:
    table = mesh.table(product)
    assert list(table.refs()) == ["main"], "an audit branch was left behind"
    assert table.current_snapshot().snapshot_id == published.snapshot_id
    rows = table.scan().to_arrow()
    assert rows.num_rows == published.rows.num_rows
    assert rows.equals(published.rows)


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------
def test_cases_cover_every_kind_of_corruption_named_in_the_issue():
    kinds = {
        "wrong-type",
        "null-key",
        "duplicate-key",
        "out-of-range",
        "unknown-unit",
        "missing-column",
        "empty-file",
        "non-utf8",
    }
    assert {k for k in kinds if any(case.id.startswith(f"{k}-") for case in CASES)} == kinds
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("relative", [FUNDAMENTALS, EMISSIONS, TARGETS])
def test_rewriting_an_untouched_csv_keeps_its_bytes(tmp_path, relative):
    """A case's only change to a file is its corruption (the pandas round trip changes nothing)."""
    (tmp_path / relative).parent.mkdir(parents=True)
    shutil.copy2(SAMPLE / relative, tmp_path / relative)
    edit_csv(relative, lambda frame: frame)(tmp_path)
    assert (tmp_path / relative).read_bytes() == (SAMPLE / relative).read_bytes()


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_corrupted_input_is_stopped_and_main_is_unchanged(mesh: Mesh, case: Case):
    published = mesh.baseline(case.product)
    case.corrupt(mesh.raw)
    try:
        result = mesh.run(case.product)
        assert_stopped_clearly(result, case)
        assert_unchanged(mesh, case.product, published)
    finally:
        mesh.restore(case.product, case.file)
