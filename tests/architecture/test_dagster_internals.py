"""Every Dagster internal the platform relies on (mesh_assets/orchestration/dagster_internals.py)
and every GraphQL document it sends, checked against the pinned Dagster: an upgrade that changes
one fails here, not in a user's `mesh demo`."""

from __future__ import annotations

import dagster as dg
import pytest
from graphql import parse, validate

from mesh_assets.orchestration import dagster_internals as internals
from mesh_assets.orchestration.graphql import ALL_DOCUMENTS


def test_the_implicit_asset_job_and_repository_names_are_dagsters() -> None:
    from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
    from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME

    assert internals.IMPLICIT_ASSET_JOB == IMPLICIT_ASSET_JOB_NAME
    assert internals.SINGLETON_REPOSITORY == SINGLETON_REPOSITORY_NAME

    @dg.asset
    def one() -> None: ...

    repo = dg.Definitions(assets=[one]).get_repository_def()
    assert repo.name == internals.SINGLETON_REPOSITORY
    assert repo.has_implicit_global_asset_job_def()
    assert repo.get_implicit_global_asset_job_def().name == internals.IMPLICIT_ASSET_JOB


def test_the_run_coordinator_config_names_an_importable_class() -> None:
    import importlib

    module = importlib.import_module(internals.DEFAULT_RUN_COORDINATOR["module"])
    cls = getattr(module, internals.DEFAULT_RUN_COORDINATOR["class"])
    from dagster._core.run_coordinator import RunCoordinator

    assert issubclass(cls, RunCoordinator)


def test_the_grpc_ping_shutdown_and_instance_ref_exist() -> None:
    import inspect

    from dagster._core.instance.ref import InstanceRef
    from dagster._grpc.client import DagsterGrpcClient

    assert "ping" in dir(DagsterGrpcClient)
    assert "timeout" in inspect.signature(DagsterGrpcClient.shutdown_server).parameters
    assert "overrides" in inspect.signature(InstanceRef.from_dir).parameters


def test_instance_overrides_stay_in_process(tmp_path) -> None:
    """The lake URL reaches an in-process instance as an override, not through os.environ."""
    import os

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    before = dict(os.environ)
    with internals.instance_from_dir(tmp_path, {"telemetry": {"enabled": False}}) as instance:
        assert instance.root_directory == str(tmp_path)
    assert dict(os.environ) == before


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_every_graphql_document_is_valid_against_dagsters_schema(name: str) -> None:
    from dagster_graphql.schema import create_schema

    errors = validate(create_schema().graphql_schema, parse(ALL_DOCUMENTS[name]))
    assert not errors, [e.message for e in errors]
