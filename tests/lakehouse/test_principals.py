"""Which credentials a domain's code location hands its runs (no server: the lake's own tests
exercise the database side in tests/lake/test_lake_principals.py)."""

from __future__ import annotations

import importlib
import stat
from pathlib import Path

import pytest

from mesh_assets.dbt.runtime import dbt_env
from mesh_assets.definitions import build_domain_definitions
from mesh_assets.lakehouse.principals import (
    ProvisioningError,
    bucket_policy,
    landing_bucket_policy,
    provision,
)
from mesh_assets.orchestration.instance import location_env
from mesh_assets.settings import COMPUTE_LOG_PREFIX, MeshSettings, Profile, domain_s3_user


@pytest.fixture
def lake(tmp_path: Path) -> MeshSettings:
    env = {
        "MESH_HOME": str(tmp_path / "home"),
        "MESH_PG_PASSWORD": "platform-secret",
        "MESH_S3_ACCESS_KEY": "key",
        "MESH_S3_SECRET_KEY": "s3-secret",
    }
    return MeshSettings.from_env(Profile.LAKE, env)


def test_a_provisioned_domain_connects_with_its_own_role_and_password(lake: MeshSettings) -> None:
    lake.ensure_domain_secrets("companies")
    secret = lake.domain_secrets_dir("companies") / "pg_password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(lake.secrets_dir.stat().st_mode) == 0o700
    scoped = lake.for_domain("companies")
    assert scoped.principal == "companies" and scoped.catalog_user == "mesh_companies"
    assert scoped.query_user == "mesh_companies"  # Trino, and dbt's staging through Trino
    assert lake.query_user == lake.trino_user == "mesh"
    uri = scoped.catalog_properties()["uri"]
    assert uri.startswith("postgresql+psycopg2://mesh_companies:") and secret.read_text().strip() in uri
    assert "platform-secret" not in uri
    assert "mesh_companies" in scoped.catalog_uri(with_password=False)
    assert secret.read_text().strip() not in repr(scoped)


def test_a_domain_not_provisioned_keeps_the_platforms_credentials(lake: MeshSettings) -> None:
    assert lake.for_domain("emissions").principal == ""
    assert lake.for_domain("emissions").catalog_user == "mesh"
    local = lake.replace(profile=Profile.LOCAL)
    local.ensure_domain_secrets("emissions")
    assert local.for_domain("emissions").principal == ""  # the embedded profile has no principals


def test_the_code_location_carries_its_principal_to_every_run(lake: MeshSettings) -> None:
    """The principal travels in the ``mesh`` resource's config, which the run worker rebuilds its
    settings from: the run's catalog connection is the domain's, not the platform's."""
    module = importlib.import_module("domains.companies.assets")
    lake.ensure_domain_secrets("companies")
    defs = build_domain_definitions("companies", module, settings=lake)
    mesh = defs.resources["mesh"]
    assert mesh.principal == "companies"
    assert mesh.settings.catalog_user == "mesh_companies"
    assert defs.resources["io_manager"].mesh.settings.catalog_user == "mesh_companies"
    assert defs.resources["trino"].mesh.settings.query_user == "mesh_companies"
    assert dbt_env(mesh.settings, "companies", "g")["MESH_DBT_TRINO_USER"] == "mesh_companies"
    other = build_domain_definitions("companies", module, settings=lake.replace(home=lake.home / "other"))
    assert other.resources["mesh"].principal == ""


def test_provisioning_refuses_a_name_that_cannot_be_a_role(lake: MeshSettings) -> None:
    with pytest.raises(ProvisioningError, match="cannot name a database role"):
        provision(lake, ["Bad-Name"])
    with pytest.raises(ProvisioningError, match="lake profile only"):
        provision(lake.replace(profile=Profile.LOCAL), ["companies"])


def test_a_refusal_by_the_catalog_database_is_access_denied_with_its_sentence(lake: MeshSettings) -> None:
    from sqlalchemy.exc import ProgrammingError

    from mesh_assets.lakehouse.access import AccessDenied
    from mesh_assets.lakehouse.errors import storage_errors

    class Refused(Exception):
        pgcode = "42501"

    sentence = (
        "domain:emissions (catalog role mesh_emissions) may not update companies/x in the Iceberg catalog"
    )
    with (
        pytest.raises(
            AccessDenied, match=r"may not update companies/x .*\(refused by the catalog database\)"
        ),
        storage_errors(lake.for_domain("emissions"), "writing companies.x"),
    ):
        raise ProgrammingError("UPDATE iceberg_tables ...", {}, Refused(sentence))


def test_a_refusal_by_the_object_store_names_the_domains_user(lake: MeshSettings) -> None:
    from mesh_assets.lakehouse.access import AccessDenied
    from mesh_assets.lakehouse.errors import StorageError, storage_errors

    lake.ensure_domain_secrets("emissions")
    error = OSError(
        "When initiating multiple part upload for key 'x' in bucket 'warehouse': AWS Error ACCESS_DENIED"
    )
    refused = pytest.raises(
        AccessDenied,
        match=r"refused by the object store to domain:emissions \(object store user mesh-emissions\)",
    )
    with refused, storage_errors(lake.for_domain("emissions"), "writing companies.x"):
        raise error
    # the platform's own keys refused: a credentials problem, said as before
    with (
        pytest.raises(StorageError, match="rejected the S3 credentials"),
        storage_errors(lake, "writing companies.x"),
    ):
        raise error


def test_a_domains_code_server_is_handed_its_own_keys_and_none_of_the_platforms(lake: MeshSettings) -> None:
    """What `mesh ui`, the demo and `mesh deploy` start a domain's code server with (its runs are its
    children): the domain's S3 keys for the run logs, the Dagster instance's own role, and no
    platform secret, not even one the platform was given in its environment."""
    lake.ensure_secrets()
    lake.ensure_domain_secrets("companies")
    env = location_env(lake, "companies", lake.dagster_home)
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == lake.for_domain(
        "companies"
    ).s3_credentials()
    platform = ["platform-secret", "s3-secret", lake.secret("s3_access_key")]
    assert not [name for name, value in env.items() if any(secret in value for secret in platform)]
    url = env["MESH_DAGSTER_PG_URL"]
    assert url.startswith("postgresql+psycopg2://dagster:") and lake.secret("dagster_pg_password") in url
    # the platform's own processes (webserver, daemon) and a location of no provisioned domain
    platform_env = location_env(lake, "emissions", lake.dagster_home)
    assert platform_env["AWS_SECRET_ACCESS_KEY"] == "s3-secret"


def test_the_bucket_policies_confine_run_logs_and_landing_drops(lake: MeshSettings) -> None:
    """A domain's user puts run logs, is granted no read of them (it reads only the objects it
    wrote, which S3's object ownership gives it), and reads its own landing drops only."""
    policy = bucket_policy(lake, ["companies", "emissions"], {})
    logs = f"arn:aws:s3:::{lake.s3_bucket}/{COMPUTE_LOG_PREFIX}/*"
    for domain in ("companies", "emissions"):
        user = f"arn:aws:iam:::user/{domain_s3_user(domain)}"
        grants = [s for s in policy["Statement"] if user in s["Principal"]["AWS"]]
        on_logs = {a for s in grants if logs in s["Resource"] for a in s["Action"]}
        assert "s3:PutObject" in on_logs and "s3:GetObject" not in on_logs, domain
    landing = landing_bucket_policy(lake, "companies")
    readers = {u for s in landing["Statement"] for u in s["Principal"]["AWS"]}
    assert readers == {"arn:aws:iam:::user/mesh", f"arn:aws:iam:::user/{domain_s3_user('companies')}"}
    assert all(lake.landing_bucket("companies") in r for s in landing["Statement"] for r in s["Resource"])
