"""Arrow <-> Iceberg schema handling: normalising outputs, evolving tables, describing them to Dagster.

The rule the IO manager enforces: a table's schema may only *grow*. New columns are added and
types may be widened the way Iceberg allows (int -> long, float -> double, wider decimals); a
removed column or any other type change is refused with an error that names the column, because
consumers in other domains read these tables by column name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

# pyarrow, pandas and pyiceberg are imported inside the functions that need them: the contract
# rules here are imported when a code location loads (through the contracts package), which
# must not pay for the heavy libraries a run needs.
if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.types import IcebergType


class SchemaEvolutionError(ValueError):
    """An output does not fit its table's schema in a way Iceberg can evolve safely."""


class OutputDataError(ValueError):
    """An output cannot be stored as it is (a column of unknown type, a non-tabular object, ...)."""


class ContractColumnsError(ValueError):
    """An output's columns differ from those its data contract declares."""


def _normalise_type(t: pa.DataType) -> pa.DataType | None:
    """The Iceberg-storable equivalent of ``t``, or None when it is already storable."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit in ("ns", "s", "ms"):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_dictionary(t):
        return _normalise_type(t.value_type) or t.value_type
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_uint8(t) or pa.types.is_uint16(t) or pa.types.is_int8(t) or pa.types.is_int16(t):
        return pa.int32()
    if pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_float16(t):
        return pa.float32()
    return None


def normalise_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """Map Arrow types Iceberg cannot store to the nearest type it can (ns timestamps -> us, ...)."""
    import pyarrow as pa

    fields = []
    for f in schema:
        if pa.types.is_null(f.type):
            raise OutputDataError(
                f"column {f.name!r} has no values to infer a type from (all null); "
                "give it an explicit dtype, e.g. df[col].astype('string') or 'Float64'"
            )
        if pa.types.is_uint64(f.type):
            raise OutputDataError(
                f"column {f.name!r} is uint64, which Iceberg cannot store; cast it to int64"
            )
        new_type = _normalise_type(f.type)
        fields.append(f.with_type(new_type) if new_type is not None else f)
    return pa.schema(fields)


def to_arrow(obj: object) -> pa.Table:
    """A pandas DataFrame or Arrow table as an Arrow table Iceberg can store."""
    import pandas as pd
    import pyarrow as pa

    table: pa.Table
    if isinstance(obj, pd.DataFrame):
        try:
            table = pa.Table.from_pandas(obj, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            column = _failing_column(obj)
            where = f" in column {column!r}" if column else ""
            raise OutputDataError(f"cannot convert the DataFrame to Arrow{where}: {exc}") from exc
    elif isinstance(obj, pa.Table):
        table = obj
    else:
        raise OutputDataError(
            f"the Iceberg IO manager stores pandas DataFrames, pyarrow Tables or RecordBatchReaders; "
            f"got {type(obj).__name__}"
        )
    target = normalise_arrow_schema(table.schema)
    return table if target.equals(table.schema) else table.cast(target)


def _failing_column(df: pd.DataFrame) -> str | None:
    import pyarrow as pa

    for column in df.columns:
        try:
            pa.array(df[column])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return str(column)
    return None


def _can_store(table_type: IcebergType, data_type: IcebergType) -> bool:
    """Whether data of ``data_type`` can be written into a column of ``table_type`` (maybe after promotion)."""
    from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    if table_type == data_type:
        return True
    if isinstance(table_type, LongType) and isinstance(data_type, IntegerType):
        return True
    if isinstance(table_type, DoubleType) and isinstance(data_type, FloatType):
        return True
    if isinstance(table_type, DecimalType) and isinstance(data_type, DecimalType):
        return table_type.scale == data_type.scale and table_type.precision >= data_type.precision
    return False


def _can_promote(table_type: IcebergType, data_type: IcebergType) -> bool:
    """Whether the table column may be widened to ``data_type`` (Iceberg's allowed promotions)."""
    from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    if isinstance(table_type, IntegerType) and type(data_type) is LongType:
        return True
    if isinstance(table_type, FloatType) and type(data_type) is DoubleType:
        return True
    if isinstance(table_type, DecimalType) and isinstance(data_type, DecimalType):
        return table_type.scale == data_type.scale and data_type.precision > table_type.precision
    return False


def arrow_to_iceberg_schema(schema: pa.Schema) -> Schema:
    """An Iceberg schema for a new table (fresh field ids; every column optional unless told)."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.table.name_mapping import MappedField, NameMapping

    mapping = NameMapping(
        [
            MappedField.model_validate({"field-id": i, "names": [f.name]})
            for i, f in enumerate(schema, start=1)
        ]
    )
    return pyarrow_to_schema(schema, name_mapping=mapping)


@dataclass(frozen=True)
class SchemaPlan:
    """What must happen to a table's schema before an output can be written."""

    added: tuple[str, ...] = ()
    widened: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.added or self.widened)


def plan_evolution(table_schema: Schema, data_schema: pa.Schema) -> SchemaPlan:
    """Compare an output with its table. Additive changes are planned; breaking ones raise.

    Raises:
        SchemaEvolutionError: a column was removed, or its type changed in a way Iceberg cannot
            promote. The message names the column and both types.
    """
    incoming = arrow_to_iceberg_schema(data_schema)
    incoming_by_name = {f.name: f for f in incoming.fields}
    existing_by_name = {f.name: f for f in table_schema.fields}

    missing = [name for name in existing_by_name if name not in incoming_by_name]
    if missing:
        cols = ", ".join(repr(m) for m in missing)
        raise SchemaEvolutionError(
            f"column(s) {cols} exist in the table but not in the output. Removing a column is a breaking "
            "change for consumers: keep the column (nulls are fine) or publish a new major version of the product."
        )
    added, widened = [], []
    for name, field in incoming_by_name.items():
        current = existing_by_name.get(name)
        if current is None:
            added.append(name)
        elif _can_store(current.field_type, field.field_type):
            continue
        elif _can_promote(current.field_type, field.field_type):
            widened.append(name)
        else:
            raise SchemaEvolutionError(
                f"column {name!r} changes type from {current.field_type} to {field.field_type}, which Iceberg "
                "cannot promote. Cast the column back to its published type, or publish a new major version."
            )
    return SchemaPlan(added=tuple(added), widened=tuple(widened))


def conform(data: pa.Table, table_schema: Schema) -> pa.Table:
    """Order ``data`` like the table and widen columns the table stores wider; check required columns.

    Columns whose Iceberg type already matches are passed through untouched (no copy), so a
    conforming output costs nothing extra on large writes.
    """
    import pyarrow as pa

    incoming = {f.name: f.field_type for f in arrow_to_iceberg_schema(data.schema).fields}
    target = table_schema.as_arrow()
    columns, fields = [], []
    for field in table_schema.fields:
        column = data.column(field.name)
        if field.required and column.null_count:
            raise OutputDataError(
                f"column {field.name!r} is required but has {column.null_count} null value(s) in the output"
            )
        if incoming[field.name] != field.field_type:
            arrow_type = target.field(field.name).type
            try:
                column = column.cast(arrow_type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise OutputDataError(f"column {field.name!r} cannot be cast to {arrow_type}: {exc}") from exc
        columns.append(column)
        fields.append(pa.field(field.name, column.type, nullable=not field.required))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def dagster_table_schema(schema: Schema) -> dg.TableSchema:
    """The Iceberg schema as Dagster column metadata (shown on the asset page)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=str(f.field_type),
                description=f.doc,
                constraints=dg.TableColumnConstraints(nullable=not f.required),
            )
            for f in schema.fields
        ]
    )


# Iceberg widens these on write, so a contract declaring the wider type accepts the narrower one.
_CONTRACT_WIDENING = {("int", "long"), ("float", "double")}


def check_contract_columns(contract_columns: list[dict[str, Any]], types: dict[str, str]) -> None:
    """Refuse an output whose columns differ from its contract's, naming them (used by the IO manager).

    A pure rule on the output's schema against the declared columns, so it lives with the other
    schema rules (and the storage layer needs nothing from the contracts package). ``types`` maps
    each output column to its Iceberg type name; narrower numbers are accepted where Iceberg
    widens them (int -> long, float -> double).
    """
    expected = [c["name"] for c in contract_columns]
    missing = [c for c in expected if c not in types]
    extra = [c for c in types if c not in expected]
    problems = []
    if missing:
        problems.append(f"missing contract column(s) {missing}")
    if extra:
        problems.append(f"column(s) {extra} not in the contract")
    for c in contract_columns:
        actual = types.get(c["name"])
        if actual and actual != c["type"] and (actual, c["type"]) not in _CONTRACT_WIDENING:
            problems.append(f"column {c['name']!r} is {actual}, the contract says {c['type']}")
    if problems:
        raise ContractColumnsError("the output breaks its contract: " + "; ".join(problems))
