"""The mesh model mapped to OpenMetadata entities and sent with the official SDK.

Everything here imports ``metadata`` (the ``openmetadata-ingestion`` SDK, 15-20 s of imports)
inside functions: the module itself is cheap, so the CLI, the platform sensor and code locations
can import it without paying for the SDK until an export actually runs.

Mapping (FQNs in brackets):

* the lake: a Trino database service ``[mesh_lake]``, the Iceberg catalog as database
  ``[mesh_lake.iceberg]``, one schema per domain, one table per product with the contract's
  columns (``[mesh_lake.iceberg.<domain>.<product>]``);
* Dagster: a pipeline service ``[mesh_dagster]``, one pipeline per code location whose tasks are
  its assets (``downstreamTasks`` follow the asset graph inside the location); the latest run of
  the location as the pipeline's status;
* one Domain per mesh domain, one Data Product per product (its table, its owners), owners as
  teams (``team:<name>`` in a contract; the team's e-mail is the contract's e-mail owner);
* the ODCS contract as a DataContract on the table (the SDK 2.0.6 has ``CreateDataContractRequest``);
* lineage: one table -> table edge per asset dependency, naming the producing pipeline, the source
  (``DbtLineage`` or ``PipelineLineage``), the compiled SQL of dbt models and the column lineage;
* the latest ``contract`` check of each product as the result of a ``contract`` test case.

Idempotence: every request's body is hashed and kept with the entity id the server returned in a
local state file, per server URL. A later export sends only requests whose body changed. The
state is trusted only while the server still has the lake service under the id it recorded (one
GET), so a reset or different server gets everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.lineage.model import Key, MeshModel, Product

log = logging.getLogger(__name__)

DATABASE_SERVICE = "mesh_lake"
PIPELINE_SERVICE = "mesh_dagster"
TEST_DEFINITION = "meshContractCheck"

# Iceberg type (contract physicalType) -> (OpenMetadata DataType, Trino type shown)
COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "string": ("VARCHAR", "varchar"),
    "long": ("BIGINT", "bigint"),
    "int": ("INT", "integer"),
    "double": ("DOUBLE", "double"),
    "float": ("FLOAT", "real"),
    "boolean": ("BOOLEAN", "boolean"),
    "date": ("DATE", "date"),
    "timestamp": ("TIMESTAMP", "timestamp(6)"),
    "timestamptz": ("TIMESTAMPZ", "timestamp(6) with time zone"),
}
RUN_STATUS = {
    "SUCCESS": "Successful",
    "FAILURE": "Failed",
    "CANCELED": "Failed",
    "STARTED": "Pending",
    "QUEUED": "Pending",
    "STARTING": "Pending",
    "NOT_STARTED": "Pending",
    "CANCELING": "Pending",
}


class ExportError(RuntimeError):
    """The catalog refused or could not be reached; the message is one sentence naming server, entity, reason."""


@dataclass
class ExportReport:
    server: str
    sent: int = 0  # write requests (PUT/POST) sent
    unchanged: int = 0  # writes skipped: body unchanged since the last export
    reads: int = 0  # GET requests the exporter made itself (the SDK's version check not counted)
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items())) or "nothing"
        return (
            f"OpenMetadata at {self.server}: sent {self.sent} change(s) ({kinds}), {self.unchanged} unchanged, "
            f"in {self.seconds:.1f} s"
        )


def table_fqn(key: Key, catalog: str) -> str:
    return ".".join([DATABASE_SERVICE, catalog, key[0], "__".join(key[1:])])


def product_name(key: Key) -> str:
    return "__".join(key)


def _teams(product: Product) -> list[tuple[str, str | None]]:
    """``(team name, e-mail)`` owners of a product: ``team:<name>`` with the contract's e-mail owner."""
    emails = [o for o in product.owners if "@" in o and not o.startswith("team:")]
    teams = [o.split(":", 1)[1] for o in product.owners if o.startswith("team:")]
    if teams:
        return [(t, emails[0] if emails and i == 0 else None) for i, t in enumerate(teams)]
    return [(e.split("@", 1)[0].replace(".", "_"), e) for e in emails]


def _hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def connect(url: str, token: str, *, timeout: float = 30.0, retries: int = 0) -> Any:
    """An SDK client for ``url`` (with or without ``/api``), after the SDK's own version check."""
    from metadata.generated.schema.entity.services.connections.metadata.openMetadataConnection import (
        AuthProvider,
        OpenMetadataConnection,
    )
    from metadata.generated.schema.security.client.openMetadataJWTClientConfig import (
        OpenMetadataJWTClientConfig,
    )
    from metadata.ingestion.ometa.ometa_api import OpenMetadata

    host = url.rstrip("/")
    host = host if host.endswith("/api") else host + "/api"
    config = OpenMetadataConnection(
        hostPort=host,
        authProvider=AuthProvider.openmetadata,
        securityConfig=OpenMetadataJWTClientConfig.model_validate({"jwtToken": token}),
        enableVersionValidation=True,
    )
    try:
        return OpenMetadata(
            config,
            additional_client_config_arguments={"retry": retries, "timeout": (min(timeout, 10), timeout)},
        )
    except Exception as exc:
        raise ExportError(describe_failure(url, "the server version (/api/v1/system/version)", exc)) from None


def describe_failure(url: str, entity: str, exc: BaseException) -> str:
    """One sentence: the server, the entity, the reason."""
    from metadata.ingestion.ometa.client import APIError, RestTransportError

    name = type(exc).__name__
    if isinstance(exc, RestTransportError) or "Connection" in name or "Transport" in name:
        reason = "the server is unreachable (connection refused or timed out)"
    elif isinstance(exc, APIError):
        code = exc.status_code
        if code == 401:
            reason = "the token was refused (HTTP 401): check MESH_OPENMETADATA_TOKEN or secrets/openmetadata_token"
        elif code == 403:
            reason = "the token's user may not write it (HTTP 403)"
        else:
            reason = f"the server refused the request (HTTP {code}): {str(exc)[:300]}"
    elif name == "VersionMismatchException":
        reason = f"the server's version does not match the SDK's: {str(exc).split(' Either')[0]}"
    else:
        reason = f"{name}: {str(exc).splitlines()[0][:300] if str(exc) else 'no detail'}"
    return f"OpenMetadata at {url} failed on {entity}: {reason}."


class _State:
    """Hashes of the last bodies sent, with the ids the server gave, per server URL (a JSON file)."""

    def __init__(self, path: Path | None, server: str) -> None:
        self.path = path
        self.server = server
        data: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text()).get(server) or {}
            except (OSError, ValueError):
                data = {}
        self.entries: dict[str, dict[str, str]] = data.get("entries") or {}

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
            except ValueError:
                data = {}
        data[self.server] = {"entries": self.entries}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)


class Exporter:
    """Sends a :class:`MeshModel` with one SDK client; see the module docstring for the mapping."""

    def __init__(self, client: Any, url: str, catalog: str, state_path: Path | None) -> None:
        self.client = client
        self.url = url
        self.catalog = catalog
        self.state = _State(state_path, url)
        self.report = ExportReport(server=url)
        self.ids: dict[str, str] = {}

    # ---- one write ---------------------------------------------------------------------------
    def _send(
        self, kind: str, fqn: str, body: Any, send: Callable[[], Any], *, entity_id: bool = True
    ) -> str | None:
        """Send ``body`` unless the same body was sent before; remember the returned entity id."""
        state_key = f"{kind}:{fqn}"
        digest = _hash(body.model_dump_json(by_alias=True, exclude_none=True))
        previous = self.state.entries.get(state_key)
        if previous and previous.get("hash") == digest:
            self.report.unchanged += 1
            if previous.get("id"):
                self.ids[state_key] = previous["id"]
            return previous.get("id")
        try:
            result = send()
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(describe_failure(self.url, f"{kind} {fqn}", exc)) from None
        if isinstance(result, dict) and result.get("error"):
            # add_lineage reports a refused edge in its return value instead of raising
            raise ExportError(
                f"OpenMetadata at {self.url} failed on {kind} {fqn}: the server refused it: "
                f"{str(result['error'])[-300:]}."
            )
        answer_id = getattr(result, "id", None) if entity_id else None
        new_id = str(answer_id.root) if answer_id is not None else None
        self.state.entries[state_key] = {"hash": digest, **({"id": new_id} if new_id else {})}
        if new_id:
            self.ids[state_key] = new_id
        self.report.sent += 1
        self.report.by_kind[kind] = self.report.by_kind.get(kind, 0) + 1
        return new_id

    def _put(self, kind: str, fqn: str, request: Any) -> str:
        entity_id = self._send(kind, fqn, request, lambda: self.client.create_or_update(request))
        if entity_id is None:
            raise ExportError(f"OpenMetadata at {self.url} failed on {kind} {fqn}: no id in the answer.")
        return entity_id

    def _ref(self, kind: str, fqn: str, entity_type: str) -> Any:
        from metadata.generated.schema.type.entityReference import EntityReference

        return EntityReference.model_validate({"id": self.ids[f"{kind}:{fqn}"], "type": entity_type})

    # ---- validity of the recorded state ------------------------------------------------------
    def _check_state(self) -> None:
        recorded = self.state.entries.get(f"databaseService:{DATABASE_SERVICE}", {}).get("id")
        if not recorded:
            self.state.entries = {}
            return
        from metadata.generated.schema.entity.services.databaseService import DatabaseService

        try:
            current = self.client.get_by_name(DatabaseService, DATABASE_SERVICE)
        except Exception as exc:
            raise ExportError(
                describe_failure(self.url, f"databaseService {DATABASE_SERVICE}", exc)
            ) from None
        self.report.reads += 1
        if current is None or str(current.id.root) != recorded:
            log.info("OpenMetadata at %s does not hold the recorded entities: sending everything", self.url)
            self.state.entries = {}

    # ---- the whole mesh ----------------------------------------------------------------------
    def export(self, model: MeshModel) -> ExportReport:
        """Send what changed; the state of what was sent is saved even when a request fails."""
        started = time.perf_counter()
        try:
            self._export(model)
        finally:
            self.state.save()
            self.report.seconds = time.perf_counter() - started
        return self.report

    def _export(self, model: MeshModel) -> None:
        from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest
        from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest
        from metadata.generated.schema.api.data.createDataContract import CreateDataContractRequest
        from metadata.generated.schema.api.data.createPipeline import CreatePipelineRequest
        from metadata.generated.schema.api.data.createTable import CreateTableRequest
        from metadata.generated.schema.api.domains.createDataProduct import CreateDataProductRequest
        from metadata.generated.schema.api.domains.createDomain import CreateDomainRequest
        from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest
        from metadata.generated.schema.api.services.createDatabaseService import CreateDatabaseServiceRequest
        from metadata.generated.schema.api.services.createPipelineService import CreatePipelineServiceRequest
        from metadata.generated.schema.api.teams.createTeam import CreateTeamRequest
        from metadata.generated.schema.api.tests.createTestCase import CreateTestCaseRequest
        from metadata.generated.schema.api.tests.createTestDefinition import CreateTestDefinitionRequest
        from metadata.generated.schema.entity.data.pipeline import PipelineStatus, Task
        from metadata.generated.schema.entity.data.table import Column
        from metadata.generated.schema.tests.basic import TestCaseResult
        from metadata.generated.schema.type.entityLineage import (
            EntitiesEdge,
            LineageDetails,
        )

        # Requests are built with ``model_validate`` from plain values: the generated models type
        # their fields as RootModel wrappers and enums (EntityName, Markdown, Timestamp, ...) that
        # pydantic builds from those values, so the types check without wrapping each one by hand.
        self._check_state()
        catalog = self.catalog

        # owners: one team per contract team
        teams: dict[str, str | None] = {}
        for product in model.products:
            for team, email in _teams(product):
                teams[team] = teams.get(team) or email
        for team, email in sorted(teams.items()):
            self._put(
                "team",
                team,
                CreateTeamRequest.model_validate(
                    {
                        "name": team,
                        "teamType": "Group",
                        "email": email,
                        "description": f"Owners of the mesh domain products ({team}).",
                    }
                ),
            )

        def owners(product: Product) -> list[Any]:
            return [self._ref("team", t, "team") for t, _ in _teams(product)]

        # domains
        for domain in model.domains:
            domain_owners = {t for p in model.products if p.domain == domain for t, _ in _teams(p)}
            self._put(
                "domain",
                domain,
                CreateDomainRequest.model_validate(
                    {
                        "name": domain,
                        "domainType": "Source-aligned",
                        "description": f"The {domain} domain of the data mesh (Dagster code location group {domain}).",
                        "owners": [self._ref("team", t, "team") for t in sorted(domain_owners)] or None,
                    }
                ),
            )

        # the lake
        self._put(
            "databaseService",
            DATABASE_SERVICE,
            CreateDatabaseServiceRequest.model_validate(
                {
                    "name": DATABASE_SERVICE,
                    "serviceType": "Trino",
                    "description": "The mesh's Iceberg lake, queried by Trino.",
                }
            ),
        )
        database = f"{DATABASE_SERVICE}.{catalog}"
        self._put(
            "database",
            database,
            CreateDatabaseRequest.model_validate(
                {
                    "name": catalog,
                    "service": DATABASE_SERVICE,
                    "description": "The Iceberg catalog of the mesh.",
                }
            ),
        )
        for domain in model.domains:
            self._put(
                "databaseSchema",
                f"{database}.{domain}",
                CreateDatabaseSchemaRequest.model_validate(
                    {
                        "name": domain,
                        "database": database,
                        "description": f"Data products of the {domain} domain.",
                        "domains": [domain],
                    }
                ),
            )
        for product in model.products:
            fqn = table_fqn(product.key, catalog)
            columns = []
            for c in product.columns:
                data_type, display = COLUMN_TYPES.get(c.type, ("UNKNOWN", c.type))
                columns.append(
                    Column.model_validate(
                        {
                            "name": c.name,
                            "dataType": data_type,
                            "dataTypeDisplay": display,
                            "description": c.description,
                            "constraint": "NOT_NULL" if c.required else None,
                            **({"dataLength": 65535} if data_type == "VARCHAR" else {}),
                        }
                    )
                )
            self._put(
                "table",
                fqn,
                CreateTableRequest.model_validate(
                    {
                        "name": product.name,
                        "displayName": product.label,
                        "databaseSchema": f"{database}.{product.domain}",
                        "tableType": "Iceberg",
                        "columns": columns,
                        "description": product.description,
                        "owners": owners(product) or None,
                        "domains": [product.domain],
                    }
                ),
            )

        # Dagster
        self._put(
            "pipelineService",
            PIPELINE_SERVICE,
            CreatePipelineServiceRequest.model_validate(
                {
                    "name": PIPELINE_SERVICE,
                    "serviceType": "Dagster",
                    "description": "The mesh's Dagster deployment: one pipeline per code location.",
                }
            ),
        )
        downstream: dict[Key, set[Key]] = {}
        for edge in model.edges:
            downstream.setdefault(edge.upstream, set()).add(edge.downstream)
        for location, keys in sorted(model.locations.items()):
            own = set(keys)
            tasks = [
                Task.model_validate(
                    {
                        "name": "/".join(key),
                        "displayName": "/".join(key),
                        "taskType": "asset",
                        "downstreamTasks": sorted("/".join(d) for d in downstream.get(key, set()) & own)
                        or None,
                    }
                )
                for key in keys
            ]
            self._put(
                "pipeline",
                f"{PIPELINE_SERVICE}.{location}",
                CreatePipelineRequest.model_validate(
                    {
                        "name": location,
                        "service": PIPELINE_SERVICE,
                        "description": f"Dagster code location {location}: its assets are the tasks.",
                        "tasks": tasks,
                    }
                ),
            )

        # data products and contracts
        for product in model.products:
            fqn = table_fqn(product.key, catalog)
            table_ref = self._ref("table", fqn, "table")
            self._put(
                "dataProduct",
                product_name(product.key),
                CreateDataProductRequest.model_validate(
                    {
                        "name": product_name(product.key),
                        "displayName": product.label,
                        "description": product.description or f"The data product {product.label}.",
                        "domains": [product.domain],
                        "owners": owners(product) or None,
                        "assets": [table_ref],
                    }
                ),
            )
            if product.contract_path:
                status = {"active": "Approved", "draft": "Draft", "deprecated": "Deprecated"}.get(
                    (product.contract_status or "").lower(), "Approved"
                )
                self._put(
                    "dataContract",
                    f"{fqn}.contract",
                    CreateDataContractRequest.model_validate(
                        {
                            "name": f"{product_name(product.key)}_contract",
                            "displayName": f"{product.label} contract v{product.contract_version or '?'}",
                            "description": (
                                f"ODCS contract {product.contract_path}, version {product.contract_version}: "
                                "enforced by the mesh before every publication (write-audit-publish)."
                            ),
                            "entityStatus": status,
                            "entity": table_ref,
                            "schema": [
                                {
                                    "name": c.name,
                                    "dataType": COLUMN_TYPES.get(c.type, ("UNKNOWN", c.type))[0],
                                    "description": c.description,
                                    **(
                                        {"dataLength": 65535}
                                        if COLUMN_TYPES.get(c.type, ("",))[0] == "VARCHAR"
                                        else {}
                                    ),
                                }
                                for c in product.columns
                            ],
                            "owners": owners(product) or None,
                        }
                    ),
                )

        # lineage
        source = {"dbt": "DbtLineage", "pipeline": "PipelineLineage"}
        for edge in model.edges:
            up, down = table_fqn(edge.upstream, catalog), table_fqn(edge.downstream, catalog)
            details = LineageDetails.model_validate(
                {
                    "pipeline": self._ref("pipeline", f"{PIPELINE_SERVICE}.{edge.pipeline}", "pipeline"),
                    "source": source[edge.source],
                    "sqlQuery": edge.sql,
                    "description": f"{'/'.join(edge.downstream)} reads {'/'.join(edge.upstream)} "
                    "(Dagster asset dependency).",
                    "columnsLineage": [
                        {"fromColumns": [f"{up}.{c}" for c in sources], "toColumn": f"{down}.{column}"}
                        for column, sources in edge.columns
                    ]
                    or None,
                }
            )
            request = AddLineageRequest(
                edge=EntitiesEdge(
                    fromEntity=self._ref("table", up, "table"),
                    toEntity=self._ref("table", down, "table"),
                    lineageDetails=details,
                )
            )
            self._send(
                "lineage",
                f"{up}->{down}",
                request,
                lambda request=request: self.client.add_lineage(request, return_lineage=False),
                entity_id=False,
            )

        # quality: the latest contract check of each product
        if model.checks:
            self._put(
                "testDefinition",
                TEST_DEFINITION,
                CreateTestDefinitionRequest.model_validate(
                    {
                        "name": TEST_DEFINITION,
                        "displayName": "Mesh data contract",
                        "description": "The blocking contract check Dagster runs before a product is published.",
                        "entityType": "TABLE",
                        "testPlatforms": ["GreatExpectations"],
                        "parameterDefinition": [],
                    }
                ),
            )
        for check in model.checks:
            fqn = table_fqn(check.key, catalog)
            case_fqn = f"{fqn}.{check.check}"
            self._put(
                "testCase",
                case_fqn,
                CreateTestCaseRequest.model_validate(
                    {
                        "name": check.check,
                        "description": f"Dagster asset check {'/'.join(check.key)}:{check.check}.",
                        "testDefinition": TEST_DEFINITION,
                        "entityLink": f"<#E::table::{fqn}>",
                    }
                ),
            )
            result = TestCaseResult.model_validate(
                {
                    "timestamp": int(check.timestamp * 1000),
                    "testCaseStatus": "Success" if check.passed else "Failed",
                    "result": (check.description or ("passed" if check.passed else "failed"))[:1000]
                    + f" (Dagster run {check.run_id})",
                }
            )
            self._send(
                "testCaseResult",
                case_fqn,
                result,
                lambda result=result, case_fqn=case_fqn: self.client.add_test_case_results(result, case_fqn),
                entity_id=False,
            )

        # run status per pipeline
        for run in model.runs:
            status = RUN_STATUS.get(run.status, "Pending")
            body = PipelineStatus.model_validate(
                {
                    "timestamp": int(run.start * 1000),
                    "executionStatus": status,
                    "taskStatus": [
                        {
                            "name": "/".join(k),
                            "executionStatus": status,
                            "startTime": int(run.start * 1000),
                            "endTime": int(run.end * 1000) if run.end else None,
                        }
                        for k in run.tasks
                    ],
                }
            )
            fqn = f"{PIPELINE_SERVICE}.{run.location}"
            self._send(
                "pipelineStatus",
                fqn,
                body,
                lambda body=body, fqn=fqn: self.client.add_pipeline_status(fqn, body),
                entity_id=False,
            )
