"""The Iceberg IO manager against a real SQLite catalog and a real warehouse folder."""

from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.io_manager import IcebergIOManager
from mesh_assets.lakehouse.tables import MANIFEST_PROPERTIES
from mesh_assets.settings import get_settings


@pytest.fixture
def resources(mesh_home):
    return {"io_manager": IcebergIOManager.for_settings(get_settings("local"))}


@pytest.fixture
def instance(mesh_home):
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def table(identifier: str):
    return load_catalog(get_settings()).load_table(identifier)


def rows(identifier: str, **scan) -> pd.DataFrame:
    return table(identifier).scan(**scan).to_pandas()


def materialization(result, key: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


# ---- round trips ------------------------------------------------------------------------------


def test_pandas_round_trip_records_snapshot_rows_uri_and_schema(resources, instance):
    @dg.asset(key_prefix="sales")
    def orders() -> pd.DataFrame:
        return pd.DataFrame({"id": [1, 2, 3], "amount": [9.5, 1.25, 3.0], "region": ["EU", "US", None]})

    @dg.asset(key_prefix="sales")
    def order_total(orders: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"total": [orders["amount"].sum()], "n": [len(orders)]})

    result = dg.materialize([orders, order_total], resources=resources, instance=instance)
    assert result.success
    meta = materialization(result, "sales/orders")
    current = table("sales.orders").current_snapshot()
    assert meta["iceberg/snapshot_id"] == current.snapshot_id
    assert meta["dagster/row_count"] == 3
    assert meta["dagster/uri"] == table("sales.orders").location()
    assert meta["dagster/uri"].startswith("file://") and "sales/orders" in meta["dagster/uri"]
    columns = {c.name: c.type for c in meta["dagster/column_schema"].columns}
    assert columns == {"id": "long", "amount": "double", "region": "string"}
    assert rows("sales.order_total").to_dict("records") == [{"total": 13.75, "n": 3}]


def test_arrow_in_and_streaming_reader_in_and_out(resources, instance):
    @dg.asset(key_prefix="big")
    def numbers() -> pa.RecordBatchReader:
        schema = pa.schema([("n", pa.int64()), ("half", pa.float64())])
        batches = (
            pa.record_batch(
                [pa.array(range(i, i + 1000)), pa.array([x / 2 for x in range(i, i + 1000)])], schema=schema
            )
            for i in range(0, 10_000, 1000)
        )
        return pa.RecordBatchReader.from_batches(schema, batches)

    @dg.asset(key_prefix="big")
    def counted(numbers: pa.RecordBatchReader) -> pa.Table:
        total, count = 0, 0
        for batch in numbers:
            total += sum(batch.column("n").to_pylist())
            count += batch.num_rows
        return pa.table({"count": [count], "total": [total]})

    @dg.asset(key_prefix="big")
    def as_arrow(numbers: pa.Table) -> pa.Table:
        return numbers.slice(0, 5)

    result = dg.materialize([numbers, counted, as_arrow], resources=resources, instance=instance)
    assert result.success
    assert materialization(result, "big/numbers")["dagster/row_count"] == 10_000
    assert rows("big.counted").to_dict("records") == [{"count": 10_000, "total": sum(range(10_000))}]
    assert len(rows("big.as_arrow")) == 5


# ---- partitions ---------------------------------------------------------------------------------

regions = dg.StaticPartitionsDefinition(["eu", "us", "apac"])


def _regional(values: dict[str, list[int]]):
    @dg.asset(key_prefix="geo", partitions_def=regions, metadata={"partition_expr": "region"})
    def sales(context: dg.AssetExecutionContext) -> pd.DataFrame:
        region = context.partition_key
        return pd.DataFrame({"region": region, "amount": values[region]})

    return sales


def test_static_partition_replace_leaves_other_partitions(resources, instance):
    first = _regional({"eu": [1, 2], "us": [3], "apac": [4, 5, 6]})
    for key in ["eu", "us", "apac"]:
        assert dg.materialize([first], partition_key=key, resources=resources, instance=instance).success
    second = _regional({"eu": [100], "us": [], "apac": []})
    result = dg.materialize([second], partition_key="eu", resources=resources, instance=instance)
    assert result.success
    data = rows("geo.sales").sort_values(["region", "amount"])
    assert data.to_dict("records") == [
        {"region": "apac", "amount": 4},
        {"region": "apac", "amount": 5},
        {"region": "apac", "amount": 6},
        {"region": "eu", "amount": 100},
        {"region": "us", "amount": 3},
    ]
    assert materialization(result, "geo/sales")["dagster/row_count"] == 1
    spec = table("geo.sales").spec()
    assert [str(f.transform) for f in spec.fields] == ["identity"]


def test_rows_outside_the_partition_are_refused_and_nothing_is_written(resources, instance):
    good = _regional({"eu": [1], "us": [2], "apac": [3]})
    for key in ["eu", "us"]:
        dg.materialize([good], partition_key=key, resources=resources, instance=instance)
    before = table("geo.sales").current_snapshot().snapshot_id

    @dg.asset(key_prefix="geo", partitions_def=regions, metadata={"partition_expr": "region"})
    def sales(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"region": ["eu", "us"], "amount": [7, 8]})  # a "us" row in the "eu" run

    result = dg.materialize(
        [sales], partition_key="eu", resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error.cause.message)
    assert "1 row(s) of the output lie outside the partition" in message and "'region'" in message
    assert table("geo.sales").current_snapshot().snapshot_id == before
    assert sorted(rows("geo.sales")["amount"]) == [1, 2]


daily = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-11")


def test_daily_partitions_map_to_day_transform_and_replace_one_day(resources, instance):
    calls: dict[str, int] = {}

    @dg.asset(key_prefix="ops", partitions_def=daily, metadata={"partition_expr": "ts"})
    def events(context: dg.AssetExecutionContext) -> pd.DataFrame:
        day = context.partition_key
        calls[day] = calls.get(day, 0) + 1
        start = pd.Timestamp(day)
        n = 3 * calls[day]
        return pd.DataFrame({"ts": [start + pd.Timedelta(hours=h) for h in range(n)], "v": [calls[day]] * n})

    for day in ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-02"]:
        assert dg.materialize([events], partition_key=day, resources=resources, instance=instance).success
    data = rows("ops.events")
    per_day = data.groupby(data["ts"].dt.strftime("%Y-%m-%d"))["v"].agg(["count", "max"]).to_dict("index")
    assert per_day == {
        "2025-01-01": {"count": 3, "max": 1},
        "2025-01-02": {"count": 6, "max": 2},
        "2025-01-03": {"count": 3, "max": 1},
    }
    assert [str(f.transform) for f in table("ops.events").spec().fields] == ["day"]
    assert str(data["ts"].dtype).startswith("datetime64[us")


def test_multi_partitions_and_partitioned_reads(resources, instance):
    multi = dg.MultiPartitionsDefinition({"date": daily, "region": regions})

    @dg.asset(
        key_prefix="geo",
        partitions_def=multi,
        metadata={"partition_expr": {"date": "day", "region": "region"}},
    )
    def visits(context: dg.AssetExecutionContext) -> pd.DataFrame:
        keys = context.partition_key.keys_by_dimension
        return pd.DataFrame(
            {
                "day": [pd.Timestamp(keys["date"]).date()],
                "region": [keys["region"]],
                "n": [len(keys["region"])],
            }
        )

    @dg.asset(key_prefix="geo", partitions_def=multi)
    def visits_copy(visits: pd.DataFrame) -> None:
        assert len(visits) == 1  # only the matching partition is read
        return None

    for key in ["2025-01-01|eu", "2025-01-01|us", "2025-01-02|eu"]:
        pk = dg.MultiPartitionKey({"date": key.split("|")[0], "region": key.split("|")[1]})
        assert dg.materialize(
            [visits, visits_copy], partition_key=pk, resources=resources, instance=instance
        ).success
    data = rows("geo.visits")
    assert len(data) == 3
    assert [str(f.transform) for f in table("geo.visits").spec().fields] == ["day", "identity"]


def test_missing_partition_expr_is_a_clear_error(resources, instance):
    @dg.asset(key_prefix="geo", partitions_def=regions)
    def bare(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"region": [context.partition_key]})

    result = dg.materialize(
        [bare], partition_key="eu", resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert "partition_expr" in result.get_step_failure_events()[0].event_specific_data.error.cause.message


# ---- schema evolution ----------------------------------------------------------------------------


def _versioned(frame: pd.DataFrame):
    @dg.asset(key_prefix="hr", name="people")
    def people() -> pd.DataFrame:
        return frame

    return people


def _failure(result) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.cause.message


def test_additive_schema_change_is_applied(resources, instance):
    dg.materialize(
        [_versioned(pd.DataFrame({"id": [1], "name": ["a"]}))], resources=resources, instance=instance
    )
    result = dg.materialize(
        [_versioned(pd.DataFrame({"id": [2], "name": ["b"], "age": [30]}))],
        resources=resources,
        instance=instance,
    )
    assert result.success
    assert materialization(result, "hr/people")["iceberg/schema_change"] == "added age"
    assert [f.name for f in table("hr.people").schema().fields] == ["id", "name", "age"]
    assert rows("hr.people").to_dict("records") == [{"id": 2, "name": "b", "age": 30}]


def test_widening_int_to_long_is_applied(resources, instance):
    dg.materialize(
        [_versioned(pd.DataFrame({"id": pd.array([1], dtype="int32")}))],
        resources=resources,
        instance=instance,
    )
    assert str(table("hr.people").schema().find_field("id").field_type) == "int"
    result = dg.materialize(
        [_versioned(pd.DataFrame({"id": [2**40]}))], resources=resources, instance=instance
    )
    assert result.success
    assert str(table("hr.people").schema().find_field("id").field_type) == "long"
    assert rows("hr.people")["id"].tolist() == [2**40]


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (pd.DataFrame({"id": ["one"], "name": ["a"]}), "column 'id' changes type from long to string"),
        (pd.DataFrame({"id": [1]}), "column(s) 'name' exist in the table but not in the output"),
    ],
    ids=["retyped", "removed"],
)
def test_incompatible_schema_change_is_refused_naming_the_column(resources, instance, second, expected):
    dg.materialize(
        [_versioned(pd.DataFrame({"id": [1], "name": ["a"]}))], resources=resources, instance=instance
    )
    before = table("hr.people").current_snapshot().snapshot_id
    result = dg.materialize(
        [_versioned(second)], resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert expected in _failure(result)
    assert table("hr.people").current_snapshot().snapshot_id == before
    assert rows("hr.people").to_dict("records") == [{"id": 1, "name": "a"}]


def test_all_null_column_gets_an_actionable_error(resources, instance):
    result = dg.materialize(
        [_versioned(pd.DataFrame({"id": [1], "note": [None]}))],
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    assert "column 'note' has no values to infer a type from" in _failure(result)


# ---- pinned reads ------------------------------------------------------------------------------------


def test_input_pinned_to_a_snapshot_reads_that_snapshot(resources, instance):
    dg.materialize([_versioned(pd.DataFrame({"id": [1, 2]}))], resources=resources, instance=instance)
    pinned = table("hr.people").current_snapshot().snapshot_id
    dg.materialize([_versioned(pd.DataFrame({"id": [3, 4, 5]}))], resources=resources, instance=instance)

    seen: dict[str, list[int]] = {}

    @dg.asset(
        key_prefix="hr", ins={"people": dg.AssetIn(key=["hr", "people"], metadata={"snapshot_id": pinned})}
    )
    def pinned_read(people: pd.DataFrame) -> None:
        seen["pinned"] = sorted(people["id"])

    @dg.asset(key_prefix="hr", ins={"people": dg.AssetIn(key=["hr", "people"])})
    def latest_read(people: pd.DataFrame) -> None:
        seen["latest"] = sorted(people["id"])

    people = dg.AssetSpec(["hr", "people"])
    result = dg.materialize([people, pinned_read, latest_read], resources=resources, instance=instance)
    assert result.success
    assert seen == {"pinned": [1, 2], "latest": [3, 4, 5]}
    loaded = [
        e.event_specific_data.metadata["iceberg/snapshot_id"].value
        for e in result.all_events
        if e.event_type_value == "LOADED_INPUT" and e.step_key == "hr__pinned_read"
    ]
    assert loaded == [pinned]


def test_run_tag_pins_a_read_and_as_of_reads_the_past(resources, instance):
    dg.materialize([_versioned(pd.DataFrame({"id": [1]}))], resources=resources, instance=instance)
    first = table("hr.people").current_snapshot()
    dg.materialize([_versioned(pd.DataFrame({"id": [2]}))], resources=resources, instance=instance)

    seen: list[list[int]] = []

    @dg.asset(key_prefix="hr", ins={"people": dg.AssetIn(key=["hr", "people"])})
    def reader(people: pd.DataFrame) -> None:
        seen.append(sorted(people["id"]))

    tags = {"mesh/pin/hr.people": str(first.snapshot_id)}
    people = dg.AssetSpec(["hr", "people"])
    assert dg.materialize([people, reader], resources=resources, instance=instance, tags=tags).success
    as_of = datetime.fromtimestamp(first.timestamp_ms / 1000).isoformat()

    @dg.asset(key_prefix="hr", ins={"people": dg.AssetIn(key=["hr", "people"], metadata={"as_of": as_of})})
    def past(people: pd.DataFrame) -> None:
        seen.append(sorted(people["id"]))

    assert dg.materialize([people, past], resources=resources, instance=instance).success
    assert seen == [[1], [1]]


def test_unknown_snapshot_and_missing_upstream_are_clear_errors(resources, instance):
    dg.materialize([_versioned(pd.DataFrame({"id": [1]}))], resources=resources, instance=instance)

    @dg.asset(key_prefix="hr", ins={"people": dg.AssetIn(key=["hr", "people"], metadata={"snapshot_id": 42})})
    def bad_pin(people: pd.DataFrame) -> None: ...

    @dg.asset(key_prefix="hr", ins={"ghost": dg.AssetIn(key=["hr", "ghost"])})
    def needs_ghost(ghost: pd.DataFrame) -> None: ...

    specs = [dg.AssetSpec(["hr", "people"]), dg.AssetSpec(["hr", "ghost"])]
    result = dg.materialize([*specs, bad_pin], resources=resources, instance=instance, raise_on_error=False)
    assert "snapshot 42 does not exist in" in _failure(result)
    result = dg.materialize(
        [*specs, needs_ghost], resources=resources, instance=instance, raise_on_error=False
    )
    assert "hr/ghost has not been materialized yet" in _failure(result)


def test_a_catalog_out_of_step_with_its_warehouse_names_the_way_back(resources, instance):
    """A catalog kept while its warehouse was deleted (or restored from another day) points at
    metadata files that are gone: the error says so and how to recover, not a bare FileNotFoundError."""
    dg.materialize([_versioned(pd.DataFrame({"id": [1]}))], resources=resources, instance=instance)
    metadata = table("hr.people").metadata_location.removeprefix("file://")
    Path(metadata).unlink()
    result = dg.materialize(
        [_versioned(pd.DataFrame({"id": [2]}))], resources=resources, instance=instance, raise_on_error=False
    )
    message = _failure(result)
    assert "lists a table whose metadata file is missing from the warehouse" in message, message
    assert "reset or restored one without the other" in message and "materialize again" in message, message


# ---- failure safety --------------------------------------------------------------------------------


def test_a_stream_failing_midway_publishes_nothing_and_leaves_no_files(resources, instance, mesh_home):
    dg.materialize([_versioned(pd.DataFrame({"id": [1, 2, 3]}))], resources=resources, instance=instance)
    before = table("hr.people").current_snapshot().snapshot_id
    data_dir = mesh_home / "local" / "warehouse" / "hr" / "people" / "data"
    files_before = set(data_dir.iterdir())

    @dg.asset(key_prefix="hr", name="people")
    def people() -> pa.RecordBatchReader:
        schema = pa.schema([("id", pa.int64())])

        def batches():
            for i in range(5):
                yield pa.record_batch([pa.array(range(i * 200_000, (i + 1) * 200_000))], schema=schema)
            raise OSError("source connection lost")

        return pa.RecordBatchReader.from_batches(schema, batches())

    result = dg.materialize([people], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert "source connection lost" in _failure(result)
    assert table("hr.people").current_snapshot().snapshot_id == before
    assert sorted(rows("hr.people")["id"]) == [1, 2, 3]
    assert set(data_dir.iterdir()) == files_before


def test_asset_without_domain_prefix_is_refused(resources, instance):
    @dg.asset
    def loose() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    result = dg.materialize([loose], resources=resources, instance=instance, raise_on_error=False)
    assert "has no domain prefix" in _failure(result)


# ---- what a long history costs ------------------------------------------------------------------
MERGE = "commit.manifest-merge.enabled"


def _write_day(io: IcebergIOManager, name: str, day: str, version: int) -> None:
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["ops", name]),
        partition_key=day,
        asset_partitions_def=daily,
        definition_metadata={"partition_expr": "ts"},
    )
    start = pd.Timestamp(day)
    io.handle_output(
        context, pd.DataFrame({"ts": [start, start + pd.Timedelta(hours=1)], "v": [version] * 2})
    )


def _manifests(identifier: str) -> int:
    current = table(identifier)
    return len(current.current_snapshot().manifests(current.io))


def _set(identifier: str, properties: dict[str, str | None]) -> None:
    with table(identifier).transaction() as tx:
        if keep := {k: v for k, v in properties.items() if v is not None}:
            tx.set_properties(keep)
        if drop := [k for k, v in properties.items() if v is None]:
            tx.remove_properties(*drop)


def test_a_table_written_daily_keeps_a_short_manifest_list(resources):
    """Each daily commit adds a manifest; unmerged, every later overwrite reads and rewrites a list
    as long as the table's history. The IO manager's tables merge them (Iceberg's manifest merging),
    so the list stays under the merge threshold, and the rows are those of the daily writes."""
    io, days = resources["io_manager"], daily.get_partition_keys()
    for name in ("merged", "unmerged", "older"):
        _write_day(io, name, days[0], 0)
    assert MANIFEST_PROPERTIES.items() <= table("ops.merged").properties.items()
    threshold = 4  # commit.manifest.min-count-to-merge (100 by default), low to keep the test short
    _set("ops.merged", {"commit.manifest.min-count-to-merge": str(threshold)})
    _set("ops.unmerged", {MERGE: "false"})  # the owner's choice is kept
    _set("ops.older", {MERGE: None})  # as a table created before the property existed
    for name in ("merged", "unmerged"):
        for day in days[1:]:
            _write_day(io, name, day, 0)
        _write_day(io, name, days[5], 1)  # an overwrite of one partition in the middle
        data = rows(f"ops.{name}")
        per_day = data.groupby(data["ts"].dt.strftime("%Y-%m-%d"))["v"].agg(["count", "max"])
        assert per_day["count"].to_dict() == dict.fromkeys(days, 2), name
        assert per_day["max"].to_dict() == {day: int(day == days[5]) for day in days}, name
    assert _manifests("ops.merged") <= threshold
    assert _manifests("ops.unmerged") >= len(days)
    assert table("ops.unmerged").properties[MERGE] == "false"
    _write_day(io, "older", days[1], 0)
    assert table("ops.older").properties[MERGE] == "true"
