"""Each domain's own principal in the real lake: its catalog role (PostgreSQL) and its object
store user (Ceph RGW, with the warehouse bucket's policy).

Issue 14: a domain's code that tries to write into another domain's table is refused by the
catalog database and by the object store, not by the platform's code, and the published table is
unchanged after every refused attempt. The attacks use pyiceberg and boto3 directly with the
domain's own credentials, as code that bypasses the IO manager would. Three scratch domains (an
owner, a declared reader, a stranger) are provisioned by the functions the stack runs at start
(``mesh access provision``) and the bucket policy is set back to the workspace's afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pytest

from mesh_assets.contracts.access import workspace_policy
from mesh_assets.lakehouse.access import AccessDenied
from mesh_assets.lakehouse.principals import (
    drop_roles,
    provision,
    provision_instance_role,
    provision_object_store,
)
from mesh_assets.lakehouse.s3 import s3_client
from mesh_assets.orchestration.instance import dagster_pg_url
from mesh_assets.resources import MeshResource
from mesh_assets.settings import COMPUTE_LOG_PREFIX, REPO_ROOT, MeshSettings, domain_role

SCHEMA = pa.schema([("company_id", pa.string()), ("value", pa.float64())])


def _catalog(settings: MeshSettings, *, platform_files: bool = False):
    """pyiceberg's catalog as ``settings``' principal; ``platform_files``: with the platform's S3
    keys (as if the domain held them), so that only the catalog database stands in the way."""
    from pyiceberg.catalog.sql import SqlCatalog

    properties = settings.catalog_properties()
    if platform_files:
        properties |= {
            "s3.access-key-id": settings.secret("s3_access_key"),
            "s3.secret-access-key": settings.secret("s3_secret_key"),
        }
    return SqlCatalog(settings.catalog_name, **properties)


@pytest.fixture(scope="module")
def two_domains(lake_stack: MeshSettings, catalog) -> Iterator[tuple[MeshSettings, MeshSettings]]:
    """Settings of two freshly provisioned domains (the second a declared reader of the first's
    ``product``); the owner published ``<owner>.product`` with its own credentials."""
    tag = uuid.uuid4().hex[:6]
    owner, other, stranger = f"rls_owner_{tag}", f"rls_other_{tag}", f"rls_stranger_{tag}"
    scratch = [owner, other, stranger]
    policy = workspace_policy(REPO_ROOT / "workspace.yaml")
    reads = policy.domain_reads()
    assert provision(lake_stack, scratch) == [domain_role(d) for d in scratch]
    provision_object_store(lake_stack, [*policy.domains, *scratch], {**reads, other: [(owner, "product")]})
    as_owner, as_other = lake_stack.for_domain(owner), lake_stack.for_domain(other)
    assert (as_owner.principal, as_other.principal) == (owner, other)
    writer = _catalog(as_owner)
    writer.create_namespace(owner)
    table = writer.create_table(f"{owner}.product", schema=SCHEMA)
    table.append(pa.table({"company_id": ["a", "b"], "value": [1.0, 2.0]}, schema=SCHEMA))
    try:
        yield as_owner, as_other
    finally:
        provision_object_store(lake_stack, list(policy.domains), reads)
        for ns in scratch:
            if ns in {n[0] for n in catalog.list_namespaces()}:
                for ident in catalog.list_tables(ns):
                    catalog.purge_table(ident)
                catalog.drop_namespace(ns)
        drop_roles(lake_stack, scratch)
        platform = s3_client(lake_stack)
        for ns in scratch:
            shutil.rmtree(lake_stack.domain_secrets_dir(ns), ignore_errors=True)
            bucket = lake_stack.landing_bucket(ns)
            for page in platform.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    platform.delete_object(Bucket=bucket, Key=obj["Key"])
            platform.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def stranger(two_domains, lake_stack: MeshSettings) -> MeshSettings:
    """A third provisioned domain that no contract lists as a reader of the owner's product."""
    name = two_domains[0].principal.replace("rls_owner_", "rls_stranger_")
    return lake_stack.for_domain(name)


def _state(catalog, identifier: str) -> tuple[str, int]:
    table = catalog.load_table(identifier)
    return table.metadata_location, table.scan().to_arrow().num_rows


def test_a_domain_role_writes_its_namespace_and_reads_another(two_domains, catalog) -> None:
    as_owner, as_other = two_domains
    owner, other = as_owner.principal, as_other.principal
    reader = _catalog(as_other)
    assert reader.load_table(f"{owner}.product").scan().to_arrow().num_rows == 2
    reader.create_namespace(other)
    mine = reader.create_table(f"{other}.own", schema=SCHEMA)
    mine.append(pa.table({"company_id": ["z"], "value": [9.0]}, schema=SCHEMA))
    assert catalog.load_table(f"{other}.own").scan().to_arrow().num_rows == 1


ATTACKS = {
    "commit to its table": lambda c, o: c.load_table(f"{o}.product").append(
        pa.table({"company_id": ["x"], "value": [666.0]}, schema=SCHEMA)
    ),
    "overwrite its table": lambda c, o: c.load_table(f"{o}.product").overwrite(
        pa.table({"company_id": ["x"], "value": [666.0]}, schema=SCHEMA)
    ),
    "create a table in its namespace": lambda c, o: c.create_table(f"{o}.planted", schema=SCHEMA),
    "drop its table": lambda c, o: c.drop_table(f"{o}.product"),
    "rename its table away": lambda c, o: c.rename_table(f"{o}.product", f"{o}.renamed"),
    "change its namespace's properties": lambda c, o: c.update_namespace_properties(
        o, updates={"owner": "x"}
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_catalog_database_refuses_a_write_into_another_domains_namespace(
    two_domains, catalog, attack: str
) -> None:
    from sqlalchemy.exc import ProgrammingError

    as_owner, as_other = two_domains
    owner, other = as_owner.principal, as_other.principal
    before = _state(catalog, f"{owner}.product")
    with pytest.raises(ProgrammingError) as caught:
        ATTACKS[attack](_catalog(as_other, platform_files=True), owner)
    # refused by PostgreSQL (SQLSTATE 42501), in one sentence naming the principal and the product
    assert caught.value.orig.pgcode == "42501"  # type: ignore[union-attr]
    message = str(caught.value.orig).splitlines()[0]
    assert f"domain:{other} (catalog role {domain_role(other)}) may not" in message
    assert f"only the {owner} domain writes its namespace" in message
    assert _state(catalog, f"{owner}.product") == before
    assert f"{owner}.planted" not in {".".join(i) for i in catalog.list_tables(owner)}


def test_a_run_whose_platform_check_is_bypassed_is_refused_by_the_store(two_domains, catalog) -> None:
    """The IO manager without its domain (so without the platform's own write check) on the other
    domain's credentials: the object store refuses its first file, and the run fails with one
    sentence naming the principal, not a storage error about bad credentials."""
    from mesh_assets.lakehouse.io_manager import IcebergIOManager

    as_owner, as_other = two_domains
    owner = as_owner.principal
    before = _state(catalog, f"{owner}.product")

    @dg.asset(key=[owner, "product"])
    def product() -> pa.Table:
        return pa.table({"company_id": ["x"], "value": [666.0]}, schema=SCHEMA)

    io = IcebergIOManager(mesh=MeshResource.of(as_other), domain="")
    result = dg.materialize([product], resources={"io_manager": io}, raise_on_error=False)
    assert not result.success
    failures = [e.step_failure_data.error for e in result.all_events if e.is_step_failure]
    text = "\n".join(str(f) for f in failures)
    assert f"domain:{as_other.principal} (object store user mesh-{as_other.principal})" in text
    assert "refused by the object store" in text
    assert AccessDenied.__name__ in text and "StorageError" not in text
    assert _state(catalog, f"{owner}.product") == before


def test_row_level_security_guards_the_catalog_tables(lake_stack, two_domains) -> None:
    """The rules live in the database (row-level security on both catalog tables), not in our code."""
    import sqlalchemy as sa

    engine = sa.create_engine(lake_stack.catalog_uri(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT c.relname, c.relrowsecurity, count(p.polname) FROM pg_class c "
                    "LEFT JOIN pg_policy p ON p.polrelid = c.oid "
                    "WHERE c.relname IN ('iceberg_tables', 'iceberg_namespace_properties') GROUP BY 1, 2"
                )
            ).all()
            superuser = conn.execute(
                sa.text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"),
                {"r": domain_role(two_domains[1].principal)},
            ).one()
    finally:
        engine.dispose()
    assert sorted(rows) == [("iceberg_namespace_properties", True, 4), ("iceberg_tables", True, 4)]
    assert tuple(superuser) == (False, False)


def _client(settings: MeshSettings):
    return s3_client(settings, settings.s3_credentials())


def _table_keys(lake_stack: MeshSettings, catalog, identifier: str) -> list[str]:
    location = catalog.load_table(identifier).location()
    prefix = location.removeprefix(f"s3://{lake_stack.s3_bucket}/") + "/"
    listed = s3_client(lake_stack).list_objects_v2(Bucket=lake_stack.s3_bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _s3_refused(call) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    code = caught.value.response.get("Error", {}).get("Code", "")
    assert code == "AccessDenied", caught.value
    return code


def test_the_object_store_lets_a_declared_reader_read_and_refuses_a_stranger(
    two_domains, stranger, catalog
) -> None:
    as_owner, as_other = two_domains
    owner = as_owner.principal
    # the declared reader reads the product through pyiceberg with its own keys
    assert _catalog(as_other).load_table(f"{owner}.product").scan().to_arrow().num_rows == 2
    # a domain no contract lists cannot read the product's files, whatever its code does
    with pytest.raises(OSError, match=r"(?i)access_?denied|forbidden|403"):
        _catalog(stranger).load_table(f"{owner}.product").scan().to_arrow()
    metadata_key = catalog.load_table(f"{owner}.product").metadata_location.split(
        f"s3://{as_owner.s3_bucket}/", 1
    )[1]
    _s3_refused(lambda: _client(stranger).get_object(Bucket=stranger.s3_bucket, Key=metadata_key))


def test_the_object_store_refuses_a_write_into_another_domains_prefix(
    lake_stack, two_domains, catalog
) -> None:
    as_owner, as_other = two_domains
    owner = as_owner.principal
    identifier = f"{owner}.product"
    before, keys = _state(catalog, identifier), _table_keys(lake_stack, catalog, identifier)
    prefix = keys[0].rsplit("/", 2)[0]  # iceberg/<owner>/product
    client, bucket = _client(as_other), as_other.s3_bucket
    _s3_refused(lambda: client.put_object(Bucket=bucket, Key=f"{prefix}/data/planted.parquet", Body=b"x"))
    _s3_refused(lambda: client.delete_object(Bucket=bucket, Key=keys[0]))
    # a commit through pyiceberg fails at its first file, before the catalog is even asked
    with pytest.raises(OSError, match=r"(?i)access_?denied|forbidden|403"):
        _catalog(as_other).load_table(identifier).append(
            pa.table({"company_id": ["x"], "value": [666.0]}, schema=SCHEMA)
        )
    assert _state(catalog, identifier) == before
    assert _table_keys(lake_stack, catalog, identifier) == keys


def _refused(call) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_a_domain_reads_its_own_landing_drops_and_no_other_domains_run_logs(
    two_domains, lake_stack: MeshSettings
) -> None:
    """The two other things a domain's processes touch in the object store: its landing bucket
    (made by the provisioning, read by its landing sensor and ingestion runs) and the run logs
    (written by its code server and runs with its own keys, read by the platform's webserver)."""
    as_owner, as_other = two_domains
    platform, owner, other = s3_client(lake_stack), s3_client(as_owner), s3_client(as_other)
    bucket = lake_stack.landing_bucket(as_owner.principal)
    drop = f"drops/{uuid.uuid4().hex[:8]}/_SUCCESS"
    platform.put_object(Bucket=bucket, Key=drop, Body=b"")
    assert [o["Key"] for o in owner.list_objects_v2(Bucket=bucket)["Contents"]] == [drop]
    assert owner.get_object(Bucket=bucket, Key=drop)["Body"].read() == b""
    assert _refused(lambda: other.list_objects_v2(Bucket=bucket)) == "AccessDenied"
    assert _refused(lambda: other.get_object(Bucket=bucket, Key=drop)) == "AccessDenied"
    assert (
        _refused(lambda: owner.put_object(Bucket=bucket, Key="drops/planted/x", Body=b"x")) == "AccessDenied"
    )
    assert (
        _refused(lambda: owner.create_bucket(Bucket=f"{bucket}-mine")) != ""
    )  # a domain's user makes no bucket

    log = f"{COMPUTE_LOG_PREFIX}/storage/{uuid.uuid4().hex}/compute_logs/step.err"
    owner.put_object(Bucket=lake_stack.s3_bucket, Key=log, Body=b"a step's stderr")
    try:
        # the writer owns its object (S3's object ownership); no other domain reads it
        assert owner.get_object(Bucket=lake_stack.s3_bucket, Key=log)["Body"].read() == b"a step's stderr"
        assert _refused(lambda: other.get_object(Bucket=lake_stack.s3_bucket, Key=log)) == "AccessDenied"
        assert platform.get_object(Bucket=lake_stack.s3_bucket, Key=log)["Body"].read() == b"a step's stderr"
    finally:
        platform.delete_object(Bucket=lake_stack.s3_bucket, Key=log)


def test_the_dagster_instance_role_every_process_holds_cannot_reach_the_catalog(
    lake_stack: MeshSettings,
) -> None:
    """Every Dagster process, a domain's code server and runs included, holds the instance
    database's URL: its role is not the catalog's owner and may not even connect to the catalog."""
    import sqlalchemy as sa

    url = dagster_pg_url(lake_stack)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == lake_stack.pg_dagster_user
            # Dagster creates and migrates its own tables as this role
            assert conn.execute(sa.text("SELECT has_schema_privilege('public', 'CREATE')")).scalar()
    finally:
        engine.dispose()
    catalog = sa.create_engine(
        url.rsplit("/", 1)[0] + f"/{lake_stack.pg_catalog_db}", poolclass=sa.pool.NullPool
    )
    try:
        with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
            catalog.connect().close()
    finally:
        catalog.dispose()


def test_provisioning_again_keeps_the_tables_dagster_made_as_its_own_role(lake_stack: MeshSettings) -> None:
    """`mesh infra up` provisions at every start: the second time, Dagster's tables exist, made as
    the instance's own role, and the platform's role may not grant what it does not own (the first
    fresh-clone run of this change failed its stack's restart on exactly that)."""
    import sqlalchemy as sa

    engine = sa.create_engine(dagster_pg_url(lake_stack), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS mesh_test_owned_by_instance (id serial)"))
        assert provision_instance_role(lake_stack) == lake_stack.pg_dagster_user
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO mesh_test_owned_by_instance DEFAULT VALUES"))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS mesh_test_owned_by_instance"))
        engine.dispose()
