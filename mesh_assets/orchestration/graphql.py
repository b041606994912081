"""The GraphQL documents the platform sends to Dagster's webserver (what the UI sends), in one place.

``tests/orchestration`` validates every document against the schema of the pinned Dagster, so a
field renamed upstream fails a test, not a user's ``mesh demo``.
"""

from mesh_assets.orchestration.dagster_internals import IMPLICIT_ASSET_JOB

ASSET_NODES = """
query MeshAssetNodes {
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    isMaterializable
    isPartitioned
    partitionKeys
    partitionDefinition { description }
    repository { name location { name } }
    tags { key value }
    assetMaterializations(limit: 1) { timestamp }
  }
}
"""

LATEST_MATERIALIZATIONS = """
query MeshLatest($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetMaterializations(limit: 1) {
      runId
      metadataEntries {
        __typename label
        ... on IntMetadataEntry { intValue intRepr }
        ... on FloatMetadataEntry { floatValue }
        ... on TextMetadataEntry { text }
      }
    }
  }
}
"""

LAUNCH_RUN = """
mutation MeshLaunch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""

RUNS = """
query MeshRuns($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId status creationTime startTime endTime
        tags { key value }
        assetSelection { path }
        repositoryOrigin { repositoryLocationName }
      }
    }
    ... on PythonError { message }
  }
}
"""

RUN_LOGS = """
query MeshRunLogs($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey message error { message causes { message } } }
        ... on RunFailureEvent { message error { message causes { message } } }
        ... on AssetCheckEvaluationEvent {
          stepKey
          evaluation { checkName success severity description assetKey { path } }
        }
      }
    }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""

LOCATIONS = """
query MeshLocations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        displayMetadata { key value }
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

DAEMONS = """
query MeshDaemons { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""

RELOAD_LOCATION = """
mutation MeshReload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on PythonError { message }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
    ... on UnauthorizedError { message }
  }
}
"""

SENSOR_TICKS = """
query MeshTicks($selector: SensorSelector!, $limit: Int) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      minIntervalSeconds
      sensorState { status ticks(limit: $limit) { status timestamp skipReason runIds cursor error { message } } }
    }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""

ALL_DOCUMENTS = {
    "ASSET_NODES": ASSET_NODES,
    "LATEST_MATERIALIZATIONS": LATEST_MATERIALIZATIONS,
    "LAUNCH_RUN": LAUNCH_RUN,
    "RUNS": RUNS,
    "RUN_LOGS": RUN_LOGS,
    "LOCATIONS": LOCATIONS,
    "DAEMONS": DAEMONS,
    "RELOAD_LOCATION": RELOAD_LOCATION,
    "SENSOR_TICKS": SENSOR_TICKS,
}


def asset_run_params(
    location: str,
    repository: str,
    paths: list[list[str]],
    *,
    tags: dict[str, str] | None = None,
    partition_range: tuple[str, str] | None = None,
    run_config: dict | None = None,
) -> dict:
    """``executionParams`` materializing ``paths`` through the location's implicit asset job."""
    run_tags = dict(tags or {})
    if partition_range:
        run_tags["dagster/asset_partition_range_start"] = partition_range[0]
        run_tags["dagster/asset_partition_range_end"] = partition_range[1]
    params: dict = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "pipelineName": IMPLICIT_ASSET_JOB,
            "assetSelection": [{"path": p} for p in paths],
        },
        "mode": "default",
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in run_tags.items()]},
    }
    if run_config is not None:
        params["runConfigData"] = run_config
    return params


def launch_failure(result: dict) -> str | None:
    """None when ``launchPipelineExecution`` launched the run, else ``"<type>: <detail>"``."""
    if result["__typename"] == "LaunchRunSuccess":
        return None
    detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
    return f"{result['__typename']}: {detail}"
