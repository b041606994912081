"""Dagster partitions as Iceberg partitions.

A partitioned asset names, in its ``partition_expr`` metadata, the column that holds each
partition dimension (a string for one dimension, ``{dimension: column}`` for multi-partitions).
From that the IO manager derives:

* the Iceberg partition spec: identity for static/dynamic keys, hour/day/month transforms for
  time windows, so Iceberg prunes files by partition on reads and deletes;
* the row filter that selects exactly the partitions of a run: materializing a partition
  replaces exactly that partition (overwrite by filter) and leaves the others untouched;
* a check that every output row lies inside the partitions being written. Without it, a row
  written "outside" its partition would survive the overwrite and later be deleted by another
  partition's run: silent data loss, so it is refused instead.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import reduce
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as _pc
from pyiceberg.expressions import (
    AlwaysFalse,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThan,
    Or,
    Reference,
)
from pyiceberg.expressions.literals import literal
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, Transform
from pyiceberg.types import DateType, TimestampType, TimestamptzType

# pyarrow generates its compute functions when the module loads: a type checker sees none of them
pc: Any = _pc

# The Dagster schedule type of a time-window partitioning decides the Iceberg transform.
_TIME_TRANSFORMS: dict[str, Transform] = {
    "HOURLY": HourTransform(),
    "DAILY": DayTransform(),
    "WEEKLY": DayTransform(),
    "MONTHLY": MonthTransform(),
}

PARTITION_PROPERTY_PREFIX = "mesh.partition-column."


class PartitionError(ValueError):
    """A partitioned output is misdeclared or holds rows outside the partitions being written."""


@dataclass(frozen=True)
class Dimension:
    """One partition dimension: the Dagster partitioning and the column that carries it."""

    name: str
    column: str
    partitions_def: dg.PartitionsDefinition

    @property
    def is_time(self) -> bool:
        return isinstance(self.partitions_def, dg.TimeWindowPartitionsDefinition)

    @property
    def transform(self) -> Transform:
        if not self.is_time:
            return IdentityTransform()
        schedule = getattr(self.partitions_def, "schedule_type", None)
        transform = _TIME_TRANSFORMS.get(getattr(schedule, "name", ""))
        # Custom cron schedules still prune well by day.
        return transform or DayTransform()

    def time_ranges(self, keys: Sequence[str]) -> list[tuple[datetime, datetime]]:
        """The keys' time windows, adjacent ones merged, as half-open UTC ranges."""
        windows = sorted(
            (w.start, w.end)
            for w in (self.partitions_def.time_window_for_partition_key(k) for k in keys)  # type: ignore[attr-defined]
        )
        merged: list[list[datetime]] = []
        for start, end in windows:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in merged]


def dimensions(partitions_def: dg.PartitionsDefinition, partition_expr: object) -> list[Dimension]:
    """The dimensions of an asset's partitioning, with the columns named by ``partition_expr``."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        names = [d.name for d in partitions_def.partitions_defs]
        if not isinstance(partition_expr, Mapping) or set(partition_expr) != set(names):
            raise PartitionError(
                f"a multi-partitioned asset needs metadata partition_expr={{dimension: column}} naming a column "
                f"for each of its dimensions {names}; got {partition_expr!r}"
            )
        return [
            Dimension(d.name, str(partition_expr[d.name]), d.partitions_def)
            for d in partitions_def.partitions_defs
        ]
    if not isinstance(partition_expr, str) or not partition_expr:
        raise PartitionError(
            "a partitioned asset needs metadata partition_expr='<column>' naming the column that holds "
            f"the partition key (got {partition_expr!r})"
        )
    return [Dimension("", partition_expr, partitions_def)]


def split_key(dims: Sequence[Dimension], key: str) -> dict[str, str]:
    if len(dims) == 1:
        return {dims[0].name: key}
    if isinstance(key, dg.MultiPartitionKey):
        return dict(key.keys_by_dimension)
    names = [d.name for d in dims]
    # MultiPartitionKey strings join the values in dimension-name order with "|".
    return dict(zip(sorted(names), key.split("|"), strict=True))


def partition_spec(dims: Sequence[Dimension], schema: Schema) -> PartitionSpec:
    """The Iceberg partition spec for a new table."""
    fields = []
    for i, dim in enumerate(dims):
        try:
            source = schema.find_field(dim.column)
        except ValueError:
            raise PartitionError(
                f"partition column {dim.column!r} (partition_expr) is not a column of the output; "
                f"columns are {[f.name for f in schema.fields]}"
            ) from None
        if dim.is_time and not isinstance(source.field_type, (DateType, TimestampType, TimestamptzType)):
            raise PartitionError(
                f"time-partition column {dim.column!r} must be a date or timestamp, not {source.field_type}"
            )
        suffix = "" if isinstance(dim.transform, IdentityTransform) else f"_{dim.transform}"
        fields.append(
            PartitionField(
                source_id=source.field_id,
                field_id=1000 + i,
                transform=dim.transform,
                name=f"{dim.column}{suffix}",
            )
        )
    return PartitionSpec(*fields)


def partition_properties(dims: Sequence[Dimension]) -> dict[str, str]:
    """Table properties recording which column carries which Dagster dimension (for readers)."""
    return {f"{PARTITION_PROPERTY_PREFIX}{d.name or '_'}": d.column for d in dims}


def _time_literal(value: datetime, column_type: object) -> int:
    if isinstance(column_type, DateType):
        return (value.date() - date(1970, 1, 1)).days
    return int(value.timestamp() * 1_000_000)


def _dimension_filter(dim: Dimension, values: Sequence[str], schema: Schema) -> BooleanExpression:
    if not dim.is_time:
        unique = sorted(set(values))
        if len(unique) == 1:
            return EqualTo(term=Reference(dim.column), value=literal(unique[0]))
        return In(term=Reference(dim.column), values={literal(v) for v in unique})
    column_type = schema.find_field(dim.column).field_type
    ranges = [
        And(
            GreaterThanOrEqual(term=Reference(dim.column), value=literal(_time_literal(start, column_type))),
            LessThan(term=Reference(dim.column), value=literal(_time_literal(end, column_type))),
        )
        for start, end in dim.time_ranges(values)
    ]
    return reduce(Or, ranges) if ranges else AlwaysFalse()


def selection_filter(dims: Sequence[Dimension], keys: Sequence[str], schema: Schema) -> BooleanExpression:
    """The row filter selecting exactly the partitions ``keys`` (what an overwrite replaces)."""
    if len(dims) == 1:
        return _dimension_filter(dims[0], keys, schema)
    per_key = [split_key(dims, k) for k in keys]
    value_sets = {d.name: sorted({k[d.name] for k in per_key}) for d in dims}
    product = reduce(operator.mul, (len(v) for v in value_sets.values()), 1)
    if product == len(set(keys)):
        # The keys are a full cross product: one filter per dimension, AND-ed.
        return reduce(And, (_dimension_filter(d, value_sets[d.name], schema) for d in dims))
    return reduce(
        Or, (reduce(And, (_dimension_filter(d, [k[d.name]], schema) for d in dims)) for k in per_key)
    )


def _arrow_dimension_mask(dim: Dimension, values: Sequence[str], table: pa.Table) -> pa.ChunkedArray:
    column = table.column(dim.column)
    if not dim.is_time:
        return pc.fill_null(
            pc.is_in(column, value_set=pa.array(sorted(set(values)), type=column.type)), False
        )
    masks = []
    for start, end in dim.time_ranges(values):
        if pa.types.is_date(column.type):
            lo, hi = pa.scalar(start.date(), column.type), pa.scalar(end.date(), column.type)
        else:
            tz = column.type.tz
            lo = pa.scalar(start if tz else start.replace(tzinfo=None), column.type)
            hi = pa.scalar(end if tz else end.replace(tzinfo=None), column.type)
        masks.append(pc.and_(pc.greater_equal(column, lo), pc.less(column, hi)))
    return pc.fill_null(reduce(pc.or_, masks), False)


def _selection_mask(dims: Sequence[Dimension], keys: Sequence[str], table: pa.Table) -> pa.ChunkedArray:
    if len(dims) == 1:
        return _arrow_dimension_mask(dims[0], keys, table)
    per_key = [split_key(dims, k) for k in keys]
    value_sets = {d.name: sorted({k[d.name] for k in per_key}) for d in dims}
    product = reduce(operator.mul, (len(v) for v in value_sets.values()), 1)
    if product == len(set(keys)):
        return reduce(pc.and_, (_arrow_dimension_mask(d, value_sets[d.name], table) for d in dims))
    return reduce(
        pc.or_,
        (reduce(pc.and_, (_arrow_dimension_mask(d, [k[d.name]], table) for d in dims)) for k in per_key),
    )


def rows_in_partitions(dims: Sequence[Dimension], keys: Sequence[str], table: pa.Table) -> pa.Table:
    """The rows of ``table`` that lie in the partitions ``keys`` (a staged window, say)."""
    return table.filter(_selection_mask(dims, keys, table)) if len(table) else table


def check_rows_in_partitions(dims: Sequence[Dimension], keys: Sequence[str], table: pa.Table) -> None:
    """Refuse an output with rows outside the partitions being written, naming the column(s)."""
    for dim in dims:
        if dim.column not in table.column_names:
            raise PartitionError(
                f"partition column {dim.column!r} (partition_expr) is missing from the output; "
                f"columns are {table.column_names}"
            )
    if not len(table):
        return
    mask = _selection_mask(dims, keys, table)
    outside = len(table) - pc.sum(mask).as_py()
    if outside:
        rejected = pc.filter(table.select([d.column for d in dims]), pc.invert(mask)).slice(0, 3).to_pylist()
        columns = ", ".join(repr(d.column) for d in dims)
        raise PartitionError(
            f"{outside} row(s) of the output lie outside the partition(s) being written "
            f"({', '.join(sorted(set(keys))[:5])}): partition column(s) {columns} hold e.g. {rejected}"
        )


def dimensions_from_properties(
    partitions_def: dg.PartitionsDefinition, properties: Mapping[str, str], table: str
) -> list[Dimension]:
    """The dimensions of an existing table, for readers that only know its Dagster partitioning."""
    columns = {
        key.removeprefix(PARTITION_PROPERTY_PREFIX): value
        for key, value in properties.items()
        if key.startswith(PARTITION_PROPERTY_PREFIX)
    }
    if not columns:
        raise PartitionError(
            f"table {table} is read as partitioned but was not written with Dagster partitions"
        )
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return dimensions(partitions_def, columns)
    return dimensions(partitions_def, columns.get("_"))
