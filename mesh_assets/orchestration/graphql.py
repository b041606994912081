"""GraphQL documents the platform sends to Dagster (the runner in-process, services over HTTP)."""

# The implicit job of a code location that materializes any selection of its assets (the UI's "Materialize").
ASSET_JOB = "__ASSET_JOB"

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
            "pipelineName": ASSET_JOB,
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
