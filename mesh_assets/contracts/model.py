"""Data product contracts: Open Data Contract Standard (ODCS v3) files, read into what the platform enforces.

A domain keeps one contract per product in ``domains/<domain>/contracts/<product>.odcs.yaml``.
The platform reads the subset of ODCS it acts on:

* ``team`` -> Dagster owners; ``roles`` -> who may read (recorded as tags for access control);
* ``schema[0].properties`` -> the columns, Iceberg types, ``required``/``unique``/``enum``, and
  column rules (``type: custom, engine: greatExpectations``), all enforced as Great Expectations
  suites in a blocking check and as the column schema shown in the UI;
* ``schema[0].quality`` -> table rules (``rowCount``, ``duplicateValues`` over key columns);
* ``schema[0].customProperties`` ``acceptedRejections`` -> the rejection reasons (regexes, with an
  optional ``maxRows``) that are known quirks of the source; rows set aside for any other reason
  fail the contract check, so bad input is never silently filtered into a product;
* ``slaProperties`` ``latency`` -> a Dagster freshness policy (the UI marks an overdue product).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

CONTRACT_SUFFIX = ".odcs.yaml"
# Table property recording the contract version a product was last published under.
CONTRACT_VERSION_PROPERTY = "mesh.contract-version"

# ODCS physicalType values the platform accepts, as Iceberg type names.
ICEBERG_TYPES = {"string", "long", "int", "double", "float", "boolean", "date", "timestamp", "timestamptz"}


class ContractError(ValueError):
    """A contract file is invalid, or an output breaks its contract; the message names the rule."""


@dataclass(frozen=True)
class Column:
    name: str
    iceberg_type: str
    required: bool = False
    unique: bool = False
    description: str | None = None
    allowed: tuple[Any, ...] | None = None
    rules: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ProductContract:
    """What the platform enforces for one data product."""

    key: dg.AssetKey
    path: Path
    version: str
    status: str
    description: str | None
    owners: tuple[str, ...]
    readers: tuple[str, ...]
    columns: tuple[Column, ...]
    min_rows: int | None = None
    compound_keys: tuple[tuple[str, ...], ...] = ()
    freshness: timedelta | None = None
    accepted_rejections: tuple[tuple[str, int | None], ...] = ()
    # columns a consumer reads first (``customProperties: headline``): what ``mesh demo`` prints
    headline: tuple[str, ...] = ()
    # the headline as a cross table (``customProperties: headlinePivot``): rows, columns and values
    headline_pivot: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def unaccepted_rejections(self, rejections: dict[str, int]) -> dict[str, int]:
        """Rejection reasons (with row counts) the contract does not accept as known source quirks."""
        out = {}
        for reason, rows in rejections.items():
            limits = [limit for pattern, limit in self.accepted_rejections if re.search(pattern, reason)]
            if not limits or all(limit is not None and rows > limit for limit in limits):
                out[reason] = int(rows)
        return out

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column_schema(self) -> dg.TableSchema:
        return dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name,
                    type=c.iceberg_type,
                    description=c.description,
                    constraints=dg.TableColumnConstraints(nullable=not c.required, unique=c.unique),
                )
                for c in self.columns
            ]
        )

    def enforced_columns(self) -> str:
        """The columns as JSON, carried in asset metadata to the IO manager (schema enforcement)."""
        return json.dumps(
            [{"name": c.name, "type": c.iceberg_type, "required": c.required} for c in self.columns]
        )


def _latency(sla: list[Any] | None, path: Path) -> timedelta | None:
    for prop in sla or []:
        if prop.property == "latency":
            units = {"h": "hours", "d": "days", "m": "minutes", "hours": "hours", "days": "days"}
            unit = units.get(str(prop.unit or "h").lower())
            if unit is None:
                raise ContractError(f"{path}: slaProperties latency unit {prop.unit!r} is not h, d or m")
            return timedelta(**{unit: float(prop.value)})
    return None


def read_yaml(path: Path) -> Any:
    """A YAML file's data, parsed by libyaml when PyYAML has it (a code location reads every
    contract it serves and consumes at load; the pure-Python parser made that 5x slower)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def load_contract(path: Path) -> ProductContract:
    """Parse and check one contract file (cached: contracts are read at code location load)."""
    from open_data_contract_standard.model import OpenDataContractStandard

    try:
        data = read_yaml(path)  # OpenDataContractStandard.from_file, with libyaml's parser
        odcs = OpenDataContractStandard(**data)
    except Exception as exc:
        raise ContractError(f"{path}: not a valid ODCS contract: {str(exc).splitlines()[0]}") from None
    if not odcs.domain or not odcs.dataProduct or not odcs.schema_:
        raise ContractError(f"{path}: a product contract needs domain, dataProduct and one schema object")
    obj = odcs.schema_[0]
    columns = []
    for prop in obj.properties or []:
        physical = str(prop.physicalType or "").lower()
        if physical not in ICEBERG_TYPES:
            raise ContractError(
                f"{path}: column {prop.name!r} has physicalType {prop.physicalType!r}; use an Iceberg type: "
                f"{sorted(ICEBERG_TYPES)}"
            )
        rules = []
        for quality in prop.quality or []:
            if quality.type == "custom" and (quality.engine or "").lower() == "greatexpectations":
                impl = quality.implementation if isinstance(quality.implementation, dict) else {}
                if "expectation" not in impl:
                    raise ContractError(f"{path}: column {prop.name!r} has a GX rule without 'expectation'")
                rules.append({"expectation": impl["expectation"], "kwargs": dict(impl.get("kwargs") or {})})
        columns.append(
            Column(
                name=str(prop.name),
                iceberg_type=physical,
                required=bool(prop.required),
                unique=bool(prop.unique),
                description=prop.description,
                allowed=tuple(e.value for e in prop.enum) if prop.enum else None,
                rules=tuple(rules),
            )
        )
    min_rows, compound = None, []
    for quality in obj.quality or []:
        if quality.metric == "rowCount":
            if quality.mustBeGreaterThan is not None:
                min_rows = int(quality.mustBeGreaterThan) + 1
            elif quality.mustBeGreaterOrEqualTo is not None:
                min_rows = int(quality.mustBeGreaterOrEqualTo)
        elif quality.metric == "duplicateValues":
            props = (quality.arguments or {}).get("properties")
            if not props:
                raise ContractError(f"{path}: duplicateValues needs arguments.properties (the key columns)")
            compound.append(tuple(props))
    accepted = []
    headline: list[str] = []
    headline_pivot: dict[str, Any] | None = None
    for custom in obj.customProperties or []:
        if custom.property == "headline":
            headline = [str(c) for c in custom.value or []]
            unknown = sorted(set(headline) - {c.name for c in columns})
            if unknown:
                raise ContractError(
                    f"{path}: headline names column(s) {unknown} the contract does not declare"
                )
        if custom.property == "headlinePivot":
            pivot = dict(custom.value or {})
            named = [*pivot.get("rows", []), pivot.get("columns"), *pivot.get("values", [])]
            unknown = sorted({str(c) for c in named if c} - {c.name for c in columns})
            if unknown or not pivot.get("rows") or not pivot.get("values"):
                raise ContractError(
                    f"{path}: headlinePivot needs rows, columns and values naming declared columns "
                    f"(unknown: {unknown})"
                )
            headline_pivot = pivot
        if custom.property == "acceptedRejections":
            for entry in custom.value or []:
                pattern, limit = (
                    (entry, None) if isinstance(entry, str) else (entry.get("reason"), entry.get("maxRows"))
                )
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise ContractError(
                        f"{path}: acceptedRejections pattern {pattern!r} is not a regex: {exc}"
                    ) from None
                accepted.append((str(pattern), int(limit) if limit is not None else None))
    # ODCS 3.x: ``team`` is an object (name, members) or, in older files, the list of members
    team: Any = odcs.team
    members: list[Any] = list(getattr(team, "members", None) or []) if not isinstance(team, list) else team
    owners = [str(m.username) for m in members if getattr(m, "username", None) and "@" in m.username]
    team_name = getattr(team, "name", None)
    if team_name:
        owners.append(f"team:{team_name}")
    description = None
    if odcs.description is not None:
        description = odcs.description.purpose
    return ProductContract(
        key=dg.AssetKey([odcs.domain, odcs.dataProduct]),
        path=path,
        version=odcs.version or "1.0.0",
        status=odcs.status or "active",
        description=description,
        owners=tuple(owners),
        readers=tuple(str(r.role) for r in odcs.roles or [] if r.role and (r.access or "read") == "read"),
        columns=tuple(columns),
        min_rows=min_rows,
        compound_keys=tuple(compound),
        freshness=_latency(odcs.slaProperties, path),
        accepted_rejections=tuple(accepted),
        headline=tuple(headline),
        headline_pivot=headline_pivot,
        raw=odcs.model_dump(by_alias=True, exclude_none=True),
    )


def domain_contracts(directory: Path) -> dict[dg.AssetKey, ProductContract]:
    """Every contract in a domain's ``contracts/`` folder, by product key."""
    contracts: dict[dg.AssetKey, ProductContract] = {}
    for path in sorted(directory.glob(f"*{CONTRACT_SUFFIX}")):
        contract = load_contract(path.resolve())
        if contract.key in contracts:
            raise ContractError(
                f"two contracts for {contract.key.to_user_string()}: {path} and {contracts[contract.key].path}"
            )
        contracts[contract.key] = contract
    return contracts


from mesh_assets.lakehouse.schema import check_contract_columns  # noqa: F401, E402
