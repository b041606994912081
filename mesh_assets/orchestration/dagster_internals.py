"""The Dagster internals the platform relies on, each with why no public API serves, in one place.

Every name here is pinned by ``uv.lock`` and checked by ``tests/orchestration/test_dagster_internals.py``,
which fails when an upgrade of Dagster changes it: then this module is the only one to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

# A code location's implicit job that materializes any selection of its assets: what the UI's
# "Materialize" button launches. GraphQL's launchPipelineExecution needs a job name; Dagster
# exposes this one only as a private constant (IMPLICIT_ASSET_JOB_NAME).
IMPLICIT_ASSET_JOB = "__ASSET_JOB"

# The repository a ``dg.Definitions`` becomes: GraphQL selectors name a repository, and Dagster
# exposes the name only as a private constant (SINGLETON_REPOSITORY_NAME).
SINGLETON_REPOSITORY = "__repository__"

# Dagster's documented way (dagster.yaml reference) to select the run coordinator that launches at
# once, with no daemon: the config names its module path, which lives under ``_core``.
DEFAULT_RUN_COORDINATOR = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}


def ping_code_server(socket: str, timeout: float = 5.0) -> None:
    """Raise unless the gRPC code server on ``socket`` answers.

    No public client exists; the alternative, ``dagster api grpc-health-check``, starts a Python
    process (about 2 s) per attempt.
    """
    from dagster._grpc.client import DagsterGrpcClient

    DagsterGrpcClient(socket=socket).ping("mesh")


def shutdown_code_server(socket: str, timeout: int = 15) -> None:
    """Ask the code server on ``socket`` to shut down (it ends its API server child too).

    Signals are not reliable for this: a server started under an ignored SIGINT (a background job)
    ignores SIGINT and SIGTERM alike. The gRPC call has no public client either.
    """
    from dagster._grpc.client import DagsterGrpcClient

    DagsterGrpcClient(socket=socket).shutdown_server(timeout=timeout)


def instance_from_dir(dagster_home: Path, overrides: dict[str, Any] | None = None) -> dg.DagsterInstance:
    """The instance of ``dagster_home`` with config ``overrides`` applied in this process only.

    Used to open the lake instance in-process with its PostgreSQL URL given here rather than put
    into ``os.environ`` for ``dagster.yaml`` to reference. ``DagsterInstance.from_config`` takes no
    overrides, so the ref is built with the (private) ``InstanceRef.from_dir``. Never launch runs
    from such an instance: the ref would carry the URL to the run worker's command line.
    """
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home), overrides=overrides))  # type: ignore[arg-type]
