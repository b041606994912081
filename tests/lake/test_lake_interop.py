"""pyiceberg and Trino share one Iceberg JDBC catalog (PostgreSQL) and one S3 warehouse (Ceph RGW).

Both directions are checked: tables, rows and snapshots written by one are seen by the other, plus
Trino's table maintenance (optimize, expire_snapshots, remove_orphan_files) on Ceph.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.lake

ROWS = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["alpha", "beta", "gamma"], pa.string()),
        "value": pa.array([1.5, 2.5, None], pa.float64()),
    }
)


def _trino_current_snapshot(trino_sql, fqtn: str) -> int:
    schema, table = fqtn.split(".")
    rows = trino_sql(
        f'SELECT snapshot_id FROM "{schema}"."{table}$snapshots" ORDER BY committed_at DESC LIMIT 1'
    )
    return rows[0][0]


def _objects(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _prefix(location: str, bucket: str) -> str:
    assert location.startswith(f"s3://{bucket}/"), location
    return location.removeprefix(f"s3://{bucket}/").rstrip("/") + "/"


def test_catalog_uses_the_v1_layout_for_both_clients(lake_stack, catalog):
    # pyiceberg detected the iceberg_type column that deploy/local/postgres.sh created
    assert catalog._schema_version == "v1"
    engine = sa.create_engine(lake_stack.catalog_uri())
    with engine.connect() as conn:
        cols = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'iceberg_tables'"
                )
            )
        }
    engine.dispose()
    assert "iceberg_type" in cols


def test_pyiceberg_table_is_read_and_extended_by_trino(lake_stack, catalog, trino_sql, namespace):
    fqtn = f"{namespace}.from_pyiceberg"
    table = catalog.create_table(fqtn, schema=ROWS.schema)
    table.append(ROWS)

    # Trino sees pyiceberg's namespace, table, rows and snapshot
    assert [namespace] in trino_sql(f'SHOW SCHEMAS FROM "{lake_stack.trino_catalog}"')
    rows = trino_sql(f'SELECT id, name, value FROM "{namespace}".from_pyiceberg ORDER BY id')
    assert rows == [[1, "alpha", 1.5], [2, "beta", 2.5], [3, "gamma", None]]
    assert _trino_current_snapshot(trino_sql, fqtn) == table.current_snapshot().snapshot_id

    # a Trino INSERT is a new snapshot that pyiceberg sees after a refresh
    trino_sql(f"INSERT INTO \"{namespace}\".from_pyiceberg VALUES (4, 'delta', 4.5)")
    trino_snapshot = _trino_current_snapshot(trino_sql, fqtn)
    table.refresh()
    assert table.current_snapshot().snapshot_id == trino_snapshot
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3, 4]
    # and a fresh load (catalog row written by Trino) agrees
    assert catalog.load_table(fqtn).current_snapshot().snapshot_id == trino_snapshot


def test_trino_table_is_loaded_and_extended_by_pyiceberg(lake_stack, catalog, trino_sql, namespace):
    fqtn = f"{namespace}.from_trino"
    trino_sql(f'CREATE TABLE "{namespace}".from_trino (id bigint, name varchar, value double)')
    trino_sql(f"INSERT INTO \"{namespace}\".from_trino VALUES (10, 'ten', 10.0), (20, 'twenty', NULL)")

    assert (namespace, "from_trino") in catalog.list_tables(namespace)
    table = catalog.load_table(fqtn)
    assert table.current_snapshot().snapshot_id == _trino_current_snapshot(trino_sql, fqtn)
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert got == [{"id": 10, "name": "ten", "value": 10.0}, {"id": 20, "name": "twenty", "value": None}]

    # a pyiceberg append is a new snapshot that Trino reads
    table.append(pa.table({"id": pa.array([30], pa.int64()), "name": ["thirty"], "value": [30.0]}))
    assert _trino_current_snapshot(trino_sql, fqtn) == table.current_snapshot().snapshot_id
    assert trino_sql(f'SELECT count(*), sum(id) FROM "{namespace}".from_trino') == [[3, 60]]


def test_trino_schema_is_a_pyiceberg_namespace(catalog, trino_sql, namespace):
    other = f"{namespace}_t"
    trino_sql(f'CREATE SCHEMA "{other}"')
    try:
        assert (other,) in catalog.list_namespaces()
    finally:
        trino_sql(f'DROP SCHEMA "{other}"')


def test_trino_view_is_not_listed_as_a_pyiceberg_table(catalog, trino_sql, namespace):
    trino_sql(f'CREATE TABLE "{namespace}".view_base AS SELECT 1 AS x')
    trino_sql(f'CREATE VIEW "{namespace}".a_view AS SELECT x FROM "{namespace}".view_base')
    assert trino_sql(f'SELECT x FROM "{namespace}".a_view') == [[1]]
    tables = catalog.list_tables(namespace)
    assert (namespace, "view_base") in tables
    assert (namespace, "a_view") not in tables  # the V1 layout marks it iceberg_type = 'VIEW'
    trino_sql(f'DROP VIEW "{namespace}".a_view')


def test_iceberg_files_are_objects_in_the_bucket(lake_stack, catalog, s3, namespace):
    fqtn = f"{namespace}.listed"
    table = catalog.create_table(fqtn, schema=ROWS.schema)
    table.append(ROWS)
    bucket = lake_stack.s3_bucket
    assert table.metadata_location.startswith(f"s3://{bucket}/iceberg/")
    keys = _objects(s3, bucket, _prefix(table.location(), bucket))
    assert any(k.endswith(".metadata.json") for k in keys), keys
    assert any(k.endswith(".avro") for k in keys), keys  # manifest list and manifests
    assert any(k.endswith(".parquet") for k in keys), keys
    assert _prefix(table.metadata_location, bucket).rstrip("/") in keys


def test_trino_maintenance_on_ceph(lake_stack, catalog, trino_sql, s3, namespace):
    name = f'"{namespace}".maintained'
    trino_sql(f"CREATE TABLE {name} (id bigint, name varchar)")
    for i in range(4):  # four small files, four snapshots
        trino_sql(f"INSERT INTO {name} VALUES ({i}, 'row{i}')")
    bucket = lake_stack.s3_bucket
    table = catalog.load_table(f"{namespace}.maintained")
    prefix = _prefix(table.location(), bucket)

    def data_files() -> int:
        return trino_sql(f'SELECT count(*) FROM "{namespace}"."maintained$files"')[0][0]

    assert data_files() == 4
    trino_sql(f"ALTER TABLE {name} EXECUTE optimize")
    assert data_files() == 1
    parquet_before = [k for k in _objects(s3, bucket, prefix) if k.endswith(".parquet")]
    assert len(parquet_before) == 5  # the compacted file plus the 4 replaced ones

    # Files replaced by optimize are freed once the optimize snapshot itself expires (Iceberg's
    # incremental cleanup): commit once more, then expire every snapshot but the current one.
    trino_sql(f"INSERT INTO {name} VALUES (4, 'row4')")
    trino_sql(f"ALTER TABLE {name} EXECUTE expire_snapshots(retention_threshold => '0s')")
    assert trino_sql(f'SELECT count(*) FROM "{namespace}"."maintained$snapshots"') == [[1]]
    parquet_after = [k for k in _objects(s3, bucket, prefix) if k.endswith(".parquet")]
    assert len(parquet_after) == 2  # the compacted file and the last insert

    # an object no snapshot references is removed
    orphan = f"{prefix}data/orphan-{namespace}.parquet"
    s3.put_object(Bucket=bucket, Key=orphan, Body=b"not a parquet file")
    trino_sql(f"ALTER TABLE {name} EXECUTE remove_orphan_files(retention_threshold => '0s')")
    assert orphan not in _objects(s3, bucket, prefix)

    # pyiceberg still reads the maintained table, with the rows unchanged
    table = catalog.load_table(f"{namespace}.maintained")
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [0, 1, 2, 3, 4]
    assert table.current_snapshot().snapshot_id == _trino_current_snapshot(
        trino_sql, f"{namespace}.maintained"
    )
