"""A loopback stand-in for the subset of OpenMetadata's REST API the mesh export calls.

Why it is an honest seam (docs/decisions/0005-openmetadata-export.md): the exporter runs the real
SDK over real HTTP; this server checks every request body against the SDK's own generated
pydantic models (generated from OpenMetadata's JSON schemas) with **extra fields forbidden at
every depth**, answers with entities the SDK parses with the same models, and enforces the server
rules the export depends on: parents resolve by fully qualified name, references resolve by id,
both ends and the pipeline of a lineage edge exist, every column named in column lineage is a
column of its table, the client's version must match (``/system/version``) and a bearer token is
required. Every request is recorded (method, path, body) for the golden log.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


def jwt_token(subject: str) -> str:
    """An unsigned JWT-shaped token (the SDK decodes the subject for its log line)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': subject})}.c2lnbmF0dXJl"


NAMESPACE = uuid.UUID("6f1c0d2e-9a43-4d1b-8d0a-2f1e5c7b9a10")
API = "/api/v1"


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def _models() -> dict[str, tuple[type, type, str]]:
    """collection -> (create request model, entity model, entity type name). Imports the SDK."""
    from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest
    from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest
    from metadata.generated.schema.api.data.createDataContract import CreateDataContractRequest
    from metadata.generated.schema.api.data.createPipeline import CreatePipelineRequest
    from metadata.generated.schema.api.data.createTable import CreateTableRequest
    from metadata.generated.schema.api.domains.createDataProduct import CreateDataProductRequest
    from metadata.generated.schema.api.domains.createDomain import CreateDomainRequest
    from metadata.generated.schema.api.services.createDatabaseService import CreateDatabaseServiceRequest
    from metadata.generated.schema.api.services.createPipelineService import CreatePipelineServiceRequest
    from metadata.generated.schema.api.teams.createTeam import CreateTeamRequest
    from metadata.generated.schema.api.tests.createTestCase import CreateTestCaseRequest
    from metadata.generated.schema.api.tests.createTestDefinition import CreateTestDefinitionRequest
    from metadata.generated.schema.entity.data.database import Database
    from metadata.generated.schema.entity.data.databaseSchema import DatabaseSchema
    from metadata.generated.schema.entity.data.dataContract import DataContract
    from metadata.generated.schema.entity.data.pipeline import Pipeline
    from metadata.generated.schema.entity.data.table import Table
    from metadata.generated.schema.entity.domains.dataProduct import DataProduct
    from metadata.generated.schema.entity.domains.domain import Domain
    from metadata.generated.schema.entity.services.databaseService import DatabaseService
    from metadata.generated.schema.entity.services.pipelineService import PipelineService
    from metadata.generated.schema.entity.teams.team import Team
    from metadata.generated.schema.tests.testCase import TestCase
    from metadata.generated.schema.tests.testDefinition import TestDefinition

    return {
        "teams": (CreateTeamRequest, Team, "team"),
        "domains": (CreateDomainRequest, Domain, "domain"),
        "services/databaseServices": (CreateDatabaseServiceRequest, DatabaseService, "databaseService"),
        "databases": (CreateDatabaseRequest, Database, "database"),
        "databaseSchemas": (CreateDatabaseSchemaRequest, DatabaseSchema, "databaseSchema"),
        "tables": (CreateTableRequest, Table, "table"),
        "services/pipelineServices": (CreatePipelineServiceRequest, PipelineService, "pipelineService"),
        "pipelines": (CreatePipelineRequest, Pipeline, "pipeline"),
        "dataProducts": (CreateDataProductRequest, DataProduct, "dataProduct"),
        "dataContracts": (CreateDataContractRequest, DataContract, "dataContract"),
        "dataQuality/testDefinitions": (CreateTestDefinitionRequest, TestDefinition, "testDefinition"),
        "dataQuality/testCases": (CreateTestCaseRequest, TestCase, "testCase"),
    }


def extra_fields(given: Any, dumped: Any, path: str = "") -> list[str]:
    """Keys present in the request but dropped by validation (i.e. not in the schema), at any depth."""
    out: list[str] = []
    if isinstance(given, dict) and isinstance(dumped, dict):
        for key, value in given.items():
            if key not in dumped:
                out.append(f"{path}.{key}" if path else key)
            else:
                out.extend(extra_fields(value, dumped[key], f"{path}.{key}" if path else key))
    elif isinstance(given, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(given, dumped, strict=False)):
            out.extend(extra_fields(a, b, f"{path}[{i}]"))
    return out


def validate_strict(model: type, body: Any) -> Any:
    """Validate ``body`` with an SDK model; refuse unknown fields at any depth (HTTP 400)."""
    from pydantic import ValidationError

    try:
        obj = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Refused(400, f"{model.__name__}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    extras = extra_fields(body, obj.model_dump(mode="json", by_alias=True, exclude_unset=True))
    if extras:
        raise Refused(400, f"{model.__name__}: unrecognized field(s) {extras}")
    return obj


def quote_fqn(name: str) -> str:
    return f'"{name}"' if "." in name else name


@dataclass
class Store:
    version: str = "2.0.6"
    token: str | None = None
    entities: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # collection -> fqn -> entity
    by_id: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (collection, fqn)
    lineage: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # (from id, to id) -> details
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # test case fqn -> results
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # pipeline fqn -> statuses
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- helpers -------------------------------------------------------------------------------
    def get(self, collection: str, fqn: str) -> dict[str, Any]:
        entity = self.entities.get(collection, {}).get(fqn)
        if entity is None:
            raise Refused(404, f"{collection.split('/')[-1].rstrip('s')} instance for {fqn} not found")
        return entity

    def ref(self, entity_id: str, expected: str | None = None) -> dict[str, Any]:
        if entity_id not in self.by_id:
            raise Refused(404, f"{expected or 'entity'} instance for {entity_id} not found")
        collection, fqn = self.by_id[entity_id]
        entity = self.entities[collection][fqn]
        kind = _models()[collection][2]
        if expected and kind != expected:
            raise Refused(400, f"entity {entity_id} is a {kind}, not a {expected}")
        return {
            "id": entity["id"],
            "type": kind,
            "name": entity["name"],
            "fullyQualifiedName": fqn,
        }

    def ref_by_fqn(self, collection: str, fqn: str) -> dict[str, Any]:
        return self.ref(self.get(collection, fqn)["id"])

    # ---- create or update ----------------------------------------------------------------------
    def put_entity(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        create_model, entity_model, _kind = _models()[collection]
        validate_strict(create_model, body)
        name = body["name"]
        entity: dict[str, Any] = {}
        for key, value in body.items():
            if key in entity_model.model_fields or any(
                f.alias == key for f in entity_model.model_fields.values()
            ):
                entity[key] = value
        parent_fqn = None
        if collection == "databases":
            entity["service"] = self.ref_by_fqn("services/databaseServices", body["service"])
            parent_fqn = body["service"]
            entity["serviceType"] = self.get("services/databaseServices", body["service"])["serviceType"]
        elif collection == "databaseSchemas":
            database = self.get("databases", body["database"])
            entity["database"] = self.ref(database["id"])
            entity["service"] = database["service"]
            parent_fqn = body["database"]
        elif collection == "tables":
            schema = self.get("databaseSchemas", body["databaseSchema"])
            entity["databaseSchema"] = self.ref(schema["id"])
            entity["database"], entity["service"] = schema["database"], schema["service"]
            parent_fqn = body["databaseSchema"]
            names = [c["name"] for c in body["columns"]]
            if len(set(names)) != len(names):
                raise Refused(400, f"table {name} has duplicate column names")
            entity["columns"] = [
                {**c, "fullyQualifiedName": f"{parent_fqn}.{quote_fqn(name)}.{c['name']}"}
                for c in body["columns"]
            ]
        elif collection == "pipelines":
            entity["service"] = self.ref_by_fqn("services/pipelineServices", body["service"])
            parent_fqn = body["service"]
        elif collection == "dataContracts":
            target = self.ref(body["entity"]["id"])
            entity["entity"] = target
            parent_fqn = target["fullyQualifiedName"]
        elif collection == "dataQuality/testCases":
            link = body["entityLink"]
            if not (link.startswith("<#E::table::") and link.endswith(">")):
                raise Refused(400, f"entityLink {link} is not a table link")
            table_fqn = link[len("<#E::table::") : -1]
            table = self.get("tables", table_fqn)
            entity["testDefinition"] = self.ref_by_fqn("dataQuality/testDefinitions", body["testDefinition"])
            entity["testSuite"] = {
                "id": str(uuid.uuid5(NAMESPACE, f"suite:{table_fqn}")),
                "type": "testSuite",
                "fullyQualifiedName": f"{table_fqn}.testSuite",
            }
            entity["entityFQN"] = table_fqn
            parent_fqn = table["fullyQualifiedName"]
        if "domains" in body and body["domains"] is not None:
            domains = body["domains"]
            entity["domains"] = [self.ref_by_fqn("domains", d) for d in domains]
        for list_field in ("owners", "assets", "experts"):
            if body.get(list_field):
                entity[list_field] = [self.ref(r["id"]) for r in body[list_field]]
        if entity_model.__name__ == "DataProduct":
            entity.pop("assets", None)  # the entity keeps assets as relationships, not as a field
            if "assets" in body:
                for r in body["assets"] or []:
                    self.ref(r["id"])
        fqn = f"{parent_fqn}.{quote_fqn(name)}" if parent_fqn else quote_fqn(name)
        entity_id = str(uuid.uuid5(NAMESPACE, f"{collection}:{fqn}"))
        previous = self.entities.get(collection, {}).get(fqn)
        entity.update(
            {
                "id": entity_id,
                "fullyQualifiedName": fqn,
                "href": f"http://127.0.0.1{API}/{collection}/{entity_id}",
                "deleted": False,
            }
        )
        version = 0.1
        if previous is not None:
            unchanged = {k: v for k, v in previous.items() if k != "version"} == {
                k: v for k, v in entity.items() if k in previous
            }
            version = (
                previous.get("version", 0.1) if unchanged else round(previous.get("version", 0.1) + 0.1, 1)
            )
        entity["version"] = version
        allowed = {f.alias or n for n, f in entity_model.model_fields.items()}
        entity = {k: v for k, v in entity.items() if k in allowed}
        validate_strict(entity_model, entity)  # the answer parses with the SDK's entity model
        self.entities.setdefault(collection, {})[fqn] = entity
        self.by_id[entity_id] = (collection, fqn)
        return entity

    # ---- lineage -------------------------------------------------------------------------------
    def put_lineage(self, body: dict[str, Any]) -> None:
        from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest

        validate_strict(AddLineageRequest, body)
        edge = body["edge"]
        from_ref = self.ref(edge["fromEntity"]["id"], edge["fromEntity"]["type"])
        to_ref = self.ref(edge["toEntity"]["id"], edge["toEntity"]["type"])
        details = edge.get("lineageDetails") or {}
        if details.get("pipeline"):
            self.ref(details["pipeline"]["id"], "pipeline")
        columns = {}
        for end in (from_ref, to_ref):
            entity = self.entities["tables"][end["fullyQualifiedName"]]
            columns[end["id"]] = {c["fullyQualifiedName"] for c in entity["columns"]}
        for column_lineage in details.get("columnsLineage") or []:
            for column in column_lineage.get("fromColumns") or []:
                if column not in columns[from_ref["id"]]:
                    raise Refused(400, f"Invalid fully qualified column name {column}")
            to_column = column_lineage.get("toColumn")
            if to_column not in columns[to_ref["id"]]:
                raise Refused(400, f"Invalid fully qualified column name {to_column}")
        self.lineage[(from_ref["id"], to_ref["id"])] = details

    def get_lineage(self, fqn: str) -> dict[str, Any]:
        table = self.get("tables", fqn)
        ups = [(f, t, d) for (f, t), d in self.lineage.items() if t == table["id"]]
        downs = [(f, t, d) for (f, t), d in self.lineage.items() if f == table["id"]]
        node_ids = {f for f, _, _ in ups} | {t for _, t, _ in downs}
        return {
            "entity": self.ref(table["id"]),
            "nodes": [self.ref(i) for i in sorted(node_ids)],
            "upstreamEdges": [{"fromEntity": f, "toEntity": t, "lineageDetails": d} for f, t, d in ups],
            "downstreamEdges": [{"fromEntity": f, "toEntity": t, "lineageDetails": d} for f, t, d in downs],
        }

    # ---- results and statuses -----------------------------------------------------------------
    def post_test_result(self, fqn: str, body: dict[str, Any]) -> dict[str, Any]:
        from metadata.generated.schema.tests.basic import TestCaseResult

        self.get("dataQuality/testCases", fqn)
        validate_strict(TestCaseResult, body)
        self.results.setdefault(fqn, []).append(body)
        return body

    def put_pipeline_status(self, fqn: str, body: dict[str, Any]) -> dict[str, Any]:
        from metadata.generated.schema.entity.data.pipeline import PipelineStatus

        pipeline = self.get("pipelines", fqn)
        validate_strict(PipelineStatus, body)
        tasks = {t["name"] for t in pipeline.get("tasks") or []}
        unknown = [t["name"] for t in body.get("taskStatus") or [] if t["name"] not in tasks]
        if unknown:
            raise Refused(400, f"Invalid task name(s) {unknown} for pipeline {fqn}")
        self.statuses.setdefault(fqn, []).append(body)
        return {**pipeline, "pipelineStatus": body}


def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    collections = sorted(_models(), key=len, reverse=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # one write per answer and no Nagle delay: else every request waits for a delayed ACK (~40 ms)
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            path = url.path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with store.lock:
                store.log.append({"method": method, "path": unquote(path), "query": url.query, "body": body})
                try:
                    payload = self._route(method, unquote(path), url.query, body)
                    code = 200
                except Refused as refused:
                    code, payload = refused.code, {"code": refused.code, "message": refused.message}
            self._answer(code, payload)

        def _route(self, method: str, path: str, query: str, body: Any) -> Any:
            if path == f"{API}/system/version" and method == "GET":
                return {"version": store.version, "revision": "loopback", "timestamp": 0}
            if store.token is not None and self.headers.get("Authorization") != f"Bearer {store.token}":
                raise Refused(401, "Not authorized; User's Email is not present")
            if not path.startswith(API + "/"):
                raise Refused(404, f"no route {path}")
            rest = path[len(API) + 1 :]
            if rest == "lineage" and method == "PUT":
                store.put_lineage(body)
                return None
            if rest.startswith("lineage/table/name/") and method == "GET":
                return store.get_lineage(rest[len("lineage/table/name/") :])
            if rest.startswith("dataQuality/testCases/testCaseResults/") and method == "POST":
                return store.post_test_result(rest.split("testCaseResults/", 1)[1], body)
            if rest.startswith("pipelines/") and rest.endswith("/status") and method == "PUT":
                return store.put_pipeline_status(rest[len("pipelines/") : -len("/status")], body)
            for collection in collections:
                if rest == collection and method == "PUT":
                    return store.put_entity(collection, body)
                if rest.startswith(collection + "/name/") and method == "GET":
                    return store.get(collection, rest[len(collection) + len("/name/") :])
            raise Refused(404, f"no route {method} {path}")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

    return Handler


class LoopbackOpenMetadata:
    """The server in a thread on 127.0.0.1 (an ephemeral port); ``url`` for the exporter."""

    def __init__(self, token: str | None = None, version: str = "2.0.6") -> None:
        self.store = Store(version=version, token=token)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.store))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LoopbackOpenMetadata:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.store.log[since:] if r["method"] != "GET"]


# The tests' own token, and the opt-in real server captured at import (the conftest imports this
# module first), before a test module replaces the token with the loopback one. Test modules import
# them from here: `from conftest import` would pick whichever conftest pytest loaded last.
TOKEN = jwt_token("mesh-export-bot")
_REAL = (os.environ.get("MESH_OPENMETADATA_URL"), os.environ.get("MESH_OPENMETADATA_TOKEN"))


def real_server() -> tuple[str, str] | None:
    """``(url, token)`` of an OpenMetadata server started elsewhere, when the opt-in test is asked for."""
    url, token = _REAL
    return (url, token) if url and token else None
