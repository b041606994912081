"""Each domain's own principal in the lake's Iceberg catalog database, and what it may write there.

The catalog is a PostgreSQL database (pyiceberg's SQL catalog, shared with Trino's JDBC catalog):
a table is a row of ``iceberg_tables`` whose ``metadata_location`` every commit swaps, and a
namespace is rows of ``iceberg_namespace_properties``. Whoever may update a row may publish a new
version of that table. So each domain connects as its own role, ``mesh_<domain>``, and the
*database* decides what the role may change, whatever code runs under it:

- every domain role reads every row (loading a table's pointer reveals no data: the object store
  and Trino guard the files and the rows);
- it inserts, updates and deletes only rows of its own namespace: row-level security
  (``WITH CHECK`` on the new row) and a row trigger on the old row, which also gives the refusal
  its sentence. Row-level security alone would filter another namespace's rows out of an
  ``UPDATE`` or ``DELETE`` silently, and a refused commit would then read as a concurrent commit
  ("updated by another process"); the trigger turns it into a named refusal, and it sees the row
  before the change, so a rename of another domain's table into one's own namespace is refused too.

The platform's role (the tables' owner, used by Trino, the CLI and the platform location) is not
subject to either. :func:`provision` is idempotent: the stack runs it at every start with the
workspace's domains, so a domain added since gets its role at the next ``mesh infra up lake``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mesh_assets.lakehouse.s3 import ensure_bucket, s3_client
from mesh_assets.settings import (
    COMPUTE_LOG_PREFIX,
    REPO_ROOT,
    MeshSettings,
    Profile,
    domain_role,
    domain_s3_user,
)

DOMAINS_GROUP = "mesh_domains"
CEPH_SCRIPT = REPO_ROOT / "deploy" / "local" / "ceph.sh"
# what a domain does with its own tables' files (pyarrow's S3 client: multipart uploads included)
OWN_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
CATALOG_TABLES = {"iceberg_tables": "table_namespace", "iceberg_namespace_properties": "namespace"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")

GUARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION mesh_catalog_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    col text := TG_ARGV[0];
    own text;
    target text;
    entry text;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE g.rolname = '{DOMAINS_GROUP}' AND u.rolname = current_user
    ) THEN
        RETURN COALESCE(NEW, OLD);  -- the platform's role: not a domain
    END IF;
    own := substr(current_user, 6);  -- mesh_<domain>
    IF TG_OP IN ('UPDATE', 'DELETE') AND (to_jsonb(OLD) ->> col) IS DISTINCT FROM own THEN
        target := to_jsonb(OLD) ->> col;
        entry := to_jsonb(OLD) ->> 'table_name';
    ELSIF TG_OP IN ('INSERT', 'UPDATE') AND (to_jsonb(NEW) ->> col) IS DISTINCT FROM own THEN
        target := to_jsonb(NEW) ->> col;
        entry := to_jsonb(NEW) ->> 'table_name';
    ELSE
        RETURN COALESCE(NEW, OLD);
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = format(
        'domain:%s (catalog role %s) may not %s %s in the Iceberg catalog: only the %s domain writes '
        'its namespace, and no contract grants a write (publish %s''s own product and let %s read it, '
        'if its contract allows)',
        own, current_user, lower(TG_OP),
        CASE WHEN entry IS NULL THEN 'namespace ' || target ELSE target || '/' || entry END,
        target, own, target);
END
$fn$
"""

OWN_NAMESPACE_FUNCTION = """
CREATE OR REPLACE FUNCTION mesh_own_namespace() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT substr(current_user, 6)
$$
"""


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """PostgreSQL's stored form of ``password`` (SCRAM-SHA-256, RFC 5802/7677), made client-side.

    ``ALTER ROLE ... PASSWORD '<verifier>'`` sets the password without sending it: the server
    stores a verifier it is given as is. Our passwords are generated ASCII (SASLprep leaves them).
    """
    import base64
    import hashlib
    import hmac
    import os

    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class ProvisioningError(RuntimeError):
    """The catalog database could not be set up for the domains' principals."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check(domain: str) -> None:
    if not _NAME.match(domain):
        raise ProvisioningError(
            f"domain name {domain!r} cannot name a database role: use lower-case letters, digits and "
            "underscores, starting with a letter"
        )


def catalog_statements(settings: MeshSettings) -> list[str]:
    """The grants, row-level security policies and guard triggers of the catalog tables (idempotent)."""
    group = _ident(DOMAINS_GROUP)
    out = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DOMAINS_GROUP}') "
        f"THEN CREATE ROLE {group} NOLOGIN; END IF; END $$",
        # only the platform's role (the owner) and the domains' may connect to the catalog: not
        # the Dagster instance's role, which every Dagster process holds
        f"REVOKE CONNECT ON DATABASE {_ident(settings.pg_catalog_db)} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {_ident(settings.pg_catalog_db)} TO {group}",
        f"GRANT USAGE ON SCHEMA public TO {group}",
        OWN_NAMESPACE_FUNCTION,
        GUARD_FUNCTION,
    ]
    for table, col in CATALOG_TABLES.items():
        own = f"{_ident(col)} = mesh_own_namespace()"
        out += [
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {group}",
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            *(
                f"DROP POLICY IF EXISTS {p} ON {table}"
                for p in ("mesh_read", "mesh_insert", "mesh_update", "mesh_delete")
            ),
            f"CREATE POLICY mesh_read ON {table} FOR SELECT TO {group} USING (true)",
            f"CREATE POLICY mesh_insert ON {table} FOR INSERT TO {group} WITH CHECK ({own})",
            # USING (true): the guard trigger sees the old row and refuses it by name
            f"CREATE POLICY mesh_update ON {table} FOR UPDATE TO {group} USING (true) WITH CHECK ({own})",
            f"CREATE POLICY mesh_delete ON {table} FOR DELETE TO {group} USING (true)",
            f"DROP TRIGGER IF EXISTS mesh_catalog_guard ON {table}",
            f"CREATE TRIGGER mesh_catalog_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mesh_catalog_guard('{col}')",
        ]
    return out


def _ensure_login_role(conn: Any, role: str, password: str) -> None:
    """Create ``role`` (LOGIN) unless it exists, and set its password. The server gets a SCRAM
    verifier, never the password: a statement the server logs (e.g. on an error) cannot leak it."""
    import sqlalchemy as sa

    if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
        conn.execute(sa.text(f"CREATE ROLE {_ident(role)} LOGIN"))
    conn.execute(sa.text(f"ALTER ROLE {_ident(role)} LOGIN PASSWORD :pw"), {"pw": scram_verifier(password)})


def provision(settings: MeshSettings, domains: Sequence[str]) -> list[str]:
    """Give each of ``domains`` its catalog role and password file; set up the catalog's rules.

    Connects as the platform's role (which owns the catalog tables and may create roles). The
    passwords go to ``$MESH_HOME/secrets/domains/<domain>/pg_password`` (mode 0600); the server
    gets their SCRAM verifiers only. Returns the roles provisioned.
    """
    if settings.profile is not Profile.LAKE:
        raise ProvisioningError("domain principals exist in the lake profile only (--profile lake)")
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    for domain in domains:
        _check(domain)
    admin = settings.replace(principal="")
    engine = sa.create_engine(admin.catalog_uri(), poolclass=sa.pool.NullPool)
    roles = []
    try:
        with engine.begin() as conn:
            # one provisioning at a time (two stacks starting, or a test beside `mesh infra up`)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('mesh_access_provision'))"))
            for statement in catalog_statements(settings):
                conn.execute(sa.text(statement.replace(":", r"\:")))
            for domain in domains:
                settings.ensure_domain_secrets(domain)
                role = domain_role(domain)
                _ensure_login_role(conn, role, settings.domain_secret(domain, "pg_password"))
                conn.execute(sa.text(f"GRANT {_ident(DOMAINS_GROUP)} TO {_ident(role)}"))
                roles.append(role)
    except SQLAlchemyError as exc:
        raise ProvisioningError(
            f"could not provision the domains' catalog roles on {admin.catalog_uri(with_password=False)}: "
            f"{getattr(exc, 'orig', exc)}"
        ) from None
    finally:
        engine.dispose()
    return roles


def instance_statements(settings: MeshSettings) -> list[str]:
    """In the Dagster instance's database (owned by the platform's role): its own role's rights on
    everything, now and to come. Dagster creates its tables as that role on a fresh stack (they are
    its own: a GRANT on them by the platform's role would be refused); tables an earlier stack made
    as the platform's role are granted to it, one by one."""
    role = _ident(settings.pg_dagster_user)
    grant_owned = (
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT tablename AS name, 'TABLE' AS kind FROM pg_tables "
        "WHERE schemaname = 'public' AND tableowner = current_user "
        "UNION ALL SELECT sequencename, 'SEQUENCE' FROM pg_sequences "
        "WHERE schemaname = 'public' AND sequenceowner = current_user LOOP "
        f"EXECUTE format('GRANT ALL ON %s public.%I TO %s', r.kind, r.name, '{role}'); "
        "END LOOP; END $$"
    )
    return [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(settings.pg_dagster_db)} TO {role}",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {role}",
        grant_owned,
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO {role}",
    ]


def provision_instance_role(settings: MeshSettings) -> str:
    """The Dagster instance's own database role, with the password of ``dagster_pg_password``.

    Every Dagster process opens the instance, a domain's code server and its runs included: were it
    the platform's role, each domain would hold the catalog owner's password, which row-level
    security does not bind. This role may use the instance's database only.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    settings.ensure_secrets()
    admin = settings.replace(principal="")
    role = settings.pg_dagster_user
    if not _NAME.match(role) or role.startswith("mesh_") or role == admin.pg_user:
        raise ProvisioningError(
            f"the Dagster instance role {role!r} must not be a domain's or the platform's"
        )
    instance_db = admin.catalog_uri().rsplit("/", 1)[0] + f"/{settings.pg_dagster_db}"
    try:
        catalog = sa.create_engine(admin.catalog_uri(), poolclass=sa.pool.NullPool)
        try:
            with catalog.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('mesh_access_provision'))"))
                _ensure_login_role(conn, role, settings.secret("dagster_pg_password"))
        finally:
            catalog.dispose()
        instance = sa.create_engine(instance_db, poolclass=sa.pool.NullPool)
        try:
            with instance.begin() as conn:
                for statement in instance_statements(settings):
                    conn.execute(sa.text(statement))
        finally:
            instance.dispose()
    except SQLAlchemyError as exc:
        raise ProvisioningError(
            f"could not provision the Dagster instance's role {role!r}: {getattr(exc, 'orig', exc)}"
        ) from None
    return role


def drop_roles(settings: MeshSettings, domains: Sequence[str]) -> None:
    """Remove the catalog roles of ``domains`` (a domain retired, or a test's scratch domain)."""
    import sqlalchemy as sa

    engine = sa.create_engine(settings.replace(principal="").catalog_uri(), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for domain in domains:
                _check(domain)
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {_ident(domain_role(domain))}"))
    finally:
        engine.dispose()


# ---- the object store ---------------------------------------------------------------------------


def warehouse_prefix(settings: MeshSettings) -> str:
    """The key prefix of the warehouse in its bucket (``iceberg``): tables live at ``<prefix>/<ns>/<table>/``."""
    return settings.warehouse.removeprefix(f"s3://{settings.s3_bucket}").strip("/")


def _sid(domain: str) -> str:
    """A statement id from a domain name (letters and digits only, as AWS's policy grammar wants)."""
    return "".join(part.capitalize() for part in domain.split("_"))


def bucket_policy(
    settings: MeshSettings, domains: Iterable[str], reads: Mapping[str, Iterable[tuple[str, str]]]
) -> dict[str, Any]:
    """The warehouse bucket's policy: each domain's user writes under its namespace's prefix only,
    reads its dbt staging tables (written by Trino) and the products whose contracts list it
    (``reads``: domain -> ``(owner, product)``), and lists key names. The bucket's owner (the
    platform's user, Trino's) keeps its own access; anything not allowed here is denied to a
    domain's user."""
    bucket, root = settings.s3_bucket, warehouse_prefix(settings)

    def arn(*parts: str) -> str:
        return "arn:aws:s3:::" + "/".join([bucket, *parts])

    # The platform's user owns the bucket, but an object belongs to the user who wrote it: the owner
    # (Trino, the CLI, maintenance) is granted every object written by a domain's user explicitly.
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PlatformReadsAndMaintainsEveryTable",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam:::user/{settings.s3_user}"]},
            "Action": ["s3:*"],
            "Resource": [arn(), arn("*")],
        }
    ]
    for domain in sorted(set(domains)):
        who = {"AWS": [f"arn:aws:iam:::user/{domain_s3_user(domain)}"]}
        statements += [
            {
                "Sid": f"{_sid(domain)}WritesItsNamespace",
                "Effect": "Allow",
                "Principal": who,
                "Action": OWN_OBJECT_ACTIONS,
                "Resource": [arn(root, domain, "*")],
            },
            # Listing names, not contents: without it the gateway answers 403 instead of 404 for a
            # missing key (as S3 does), and pyiceberg checks that a new metadata file does not exist
            # yet. The same names are in the catalog, which every domain reads.
            {
                "Sid": f"{_sid(domain)}ListsTheWarehouse",
                "Effect": "Allow",
                "Principal": who,
                "Action": ["s3:ListBucket"],
                "Resource": [arn()],
            },
        ]
        # Run logs (the compute log manager of the domain's code server and runs): put only, so one
        # domain does not read another's (a writer reads its own objects: S3's object ownership);
        # the platform's webserver reads them all.
        statements.append(
            {
                "Sid": f"{_sid(domain)}WritesRunLogs",
                "Effect": "Allow",
                "Principal": who,
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": [arn(COMPUTE_LOG_PREFIX, "*")],
            }
        )
        readable = [arn(root, f"{domain}_staging", "*")]
        readable += [arn(root, owner, product, "*") for owner, product in sorted(set(reads.get(domain, ())))]
        statements.append(
            {
                "Sid": f"{_sid(domain)}ReadsWhatItConsumes",
                "Effect": "Allow",
                "Principal": who,
                "Action": ["s3:GetObject"],
                "Resource": readable,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def landing_bucket_policy(settings: MeshSettings, domain: str) -> dict[str, Any]:
    """The policy of ``domain``'s landing bucket: its user lists and reads the drops (its landing
    sensor and ingestion runs); the platform's user, the bucket's owner, keeps every right. Who
    uploads a drop is the source system's business: with the platform's keys or a user granted
    here by the operator."""
    bucket = settings.landing_bucket(domain)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PlatformOwnsTheLanding",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam:::user/{settings.s3_user}"]},
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {
                "Sid": f"{_sid(domain)}ReadsItsDrops",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam:::user/{domain_s3_user(domain)}"]},
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


def _ensure_s3_users(settings: MeshSettings, domains: Sequence[str]) -> None:
    """The domains' gateway users with the keys of their secret files (``deploy/local/ceph.sh
    s3-users``, the one place that runs ``radosgw-admin``; keys on its stdin)."""
    lines = "".join(
        f"{domain_s3_user(d)}\t{settings.domain_secret(d, 's3_access_key')}\t{settings.domain_secret(d, 's3_secret_key')}\n"
        for d in domains
    )
    proc = subprocess.run(
        ["bash", str(CEPH_SCRIPT), "s3-users"],
        input=lines,
        env=settings.process_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip() or "no output").splitlines()[-1]
        raise ProvisioningError(f"could not create the domains' object store users: {last}")


def provision_object_store(
    settings: MeshSettings, domains: Sequence[str], reads: Mapping[str, Iterable[tuple[str, str]]]
) -> None:
    """Give each of ``domains`` its gateway user and set the warehouse bucket's policy for them.

    The policy names every domain given here: pass the workspace's domains (and their reads from
    the contracts), as ``mesh access provision`` does; a domain left out loses its access.
    """
    from botocore.exceptions import ClientError

    for domain in domains:
        _check(domain)
        settings.ensure_domain_secrets(domain)
    _ensure_s3_users(settings, domains)
    client = s3_client(settings.replace(principal=""))
    policies = {settings.s3_bucket: bucket_policy(settings, domains, reads)}
    # each domain's landing bucket, created by the platform (a domain's user may create none)
    for domain in domains:
        policies[settings.landing_bucket(domain)] = landing_bucket_policy(settings, domain)
    for bucket, policy in policies.items():
        try:
            if bucket != settings.s3_bucket:
                ensure_bucket(client, bucket)
            client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        except ClientError as exc:
            raise ProvisioningError(
                f"the gateway refused the bucket policy of {bucket}: {exc.response.get('Error', {})}"
            ) from None
