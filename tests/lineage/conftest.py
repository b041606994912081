"""Session fixtures for the catalog export: one settings object, one load of the sample mesh, one SDK import.

The SDK costs 15-20 s to import; everything here is session-scoped so a test process pays it once.
The sample mesh's tables come from the contracts (the definitions' column schemas): nothing runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # om_server, a helper module of these tests

from om_server import TOKEN, LoopbackOpenMetadata  # noqa: E402


@pytest.fixture(scope="module")
def lineage_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private MESH_HOME (local profile) for a module, and the test token as the settings secret.

    Module-scoped so the environment is restored when the module ends: a session-long MESH_HOME
    leaked into every later test (the lake restart test then drove another checkout's PostgreSQL).
    """
    home = tmp_path_factory.mktemp("lineage") / "mesh"
    env = {"MESH_HOME": str(home), "MESH_PROFILE": "local", "MESH_OPENMETADATA_TOKEN": TOKEN}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.delenv("MESH_OPENMETADATA_URL", raising=False)
        yield env


@pytest.fixture(scope="module")
def settings(lineage_env: dict[str, str]):
    from mesh_assets.settings import MeshSettings

    return MeshSettings.from_env("local")


@pytest.fixture(scope="module")
def location_definitions(settings):
    """Every code location of workspace.yaml, loaded in-process once."""
    from mesh_assets.lineage.model import load_location_definitions, workspace_locations
    from mesh_assets.settings import REPO_ROOT

    return {
        name: load_location_definitions(module)
        for name, module in workspace_locations(REPO_ROOT / "workspace.yaml")
    }


@pytest.fixture(scope="module")
def sample_model(settings, location_definitions):
    """The sample mesh without instance state (deterministic: no runs, no check results)."""
    from mesh_assets.lineage.model import build_model

    return build_model(settings, definitions=location_definitions, with_instance=False)


# the locations the golden request log was recorded with (the sample mesh): a domain added later
# (`mesh new-domain`) is exported by every other test, and leaves the golden file as it is
SAMPLE_LOCATIONS = (
    "benchmarks",
    "companies",
    "companies_airflow",
    "emissions",
    "portfolio_alignment",
    "mesh_lineage",
)


@pytest.fixture(scope="module")
def golden_model(settings, location_definitions):
    """The sample mesh's locations only, without instance state."""
    from mesh_assets.lineage.model import build_model

    sample = {n: d for n, d in location_definitions.items() if n in SAMPLE_LOCATIONS}
    assert set(sample) == set(SAMPLE_LOCATIONS), f"a sample location is missing: {sorted(sample)}"
    return build_model(settings, definitions=sample, with_instance=False)


@pytest.fixture(scope="session")
def sdk() -> None:
    """Import the SDK once for the session (and warm its models)."""
    import metadata.ingestion.ometa.ometa_api  # noqa: F401


@pytest.fixture
def server(sdk) -> Iterator[LoopbackOpenMetadata]:
    with LoopbackOpenMetadata(token=TOKEN) as srv:
        yield srv


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "openmetadata-state.json"
