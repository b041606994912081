"""GraphQL documents the platform sends to Dagster (the runner in-process, services over HTTP)."""

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
