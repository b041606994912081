"""Data contracts of the data products: ``domains/<domain>/contracts/<product>.odcs.yaml`` (ODCS v3.1).

Two layers:

* the files themselves: one per product, valid ODCS (pydantic model and JSON schema), named after their
  location, every column typed and described, owners, read roles and a freshness SLA, well-formed rules;
* the contracts against the real tables of a fresh ``mesh demo`` run (slow): columns and Iceberg types in
  table order, the partition column, required columns without nulls, keys without duplicates, enums that
  cover the data, row counts, and every Great Expectations range/regex rule. The rules are evaluated here
  with pandas (as GX does: nulls are ignored by between/regex), not through the platform.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from open_data_contract_standard.model import DataQuality, OpenDataContractStandard, SchemaProperty

from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import locations

SAMPLE_DOMAINS = {"benchmarks", "companies", "emissions", "portfolio_alignment"}


def _products() -> dict[str, list[str]]:
    """Per domain of the workspace, the products its location materializes (its own namespace):
    what must have a contract, derived from the code, so a domain added by `mesh new-domain` is
    checked like the sample's. The contracts themselves are not read here (that would make the
    one-file-per-product test below hold by construction)."""
    products: dict[str, list[str]] = {}
    for location in locations(REPO_ROOT / "workspace.yaml"):
        if location.owns_contracts:
            graph = location.load().get_repository_def().asset_graph
            keys = graph.materializable_asset_keys
            products[location.domain] = sorted(k.path[-1] for k in keys if k.path[0] == location.domain)
    return products


PRODUCTS = _products()
CASES = [(domain, product) for domain, products in PRODUCTS.items() for product in products]
CASE_IDS = [f"{domain}.{product}" for domain, product in CASES]
per_product = pytest.mark.parametrize(("domain", "product"), CASES, ids=CASE_IDS)
# what `mesh demo` publishes: market_data waits for the legacy Airflow DAG's first publication
# (tests/airflow publishes it, under its contract, on real Airflow 2 and 3)
DEMO_CASES = [c for c in CASES if c != ("companies", "market_data")]

# Freshness promised per domain: (value, unit).
LATENCY: dict[str, tuple[int, str]] = {
    "benchmarks": (7, "d"),
    "companies": (24, "h"),
    "emissions": (24, "h"),
    "portfolio_alignment": (24, "h"),
}
# Iceberg type name -> the ODCS logical type a column of that type must declare.
LOGICAL_TYPES: dict[str, str] = {
    "string": "string",
    "long": "integer",
    "int": "integer",
    "double": "number",
    "float": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
}
# The Great Expectations column expectations the platform reads, with the kwargs each may carry.
EXPECTATION_KWARGS: dict[str, set[str]] = {
    "expect_column_values_to_be_between": {"min_value", "max_value", "strict_min", "strict_max"},
    "expect_column_values_to_match_regex": {"regex"},
}
TABLE_METRICS = {"rowCount", "duplicateValues"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def contract_path(domain: str, product: str) -> Path:
    return REPO_ROOT / "domains" / domain / "contracts" / f"{product}.odcs.yaml"


def load_contract(domain: str, product: str) -> OpenDataContractStandard:
    return OpenDataContractStandard.from_file(str(contract_path(domain, product)))


def properties(contract: OpenDataContractStandard) -> list[SchemaProperty]:
    return list(contract.schema_[0].properties or [])


def column_rules(prop: SchemaProperty) -> list[tuple[str, dict[str, Any]]]:
    """(expectation, kwargs) of a property's Great Expectations rules."""
    rules = []
    for rule in prop.quality or []:
        impl = rule.implementation if isinstance(rule.implementation, dict) else {}
        rules.append((str(impl.get("expectation")), dict(impl.get("kwargs") or {})))
    return rules


def table_rules(contract: OpenDataContractStandard, metric: str) -> list[DataQuality]:
    return [q for q in contract.schema_[0].quality or [] if q.metric == metric]


def primary_key(contract: OpenDataContractStandard) -> list[str]:
    keyed = [p for p in properties(contract) if p.primaryKey]
    return [p.name for p in sorted(keyed, key=lambda p: p.primaryKeyPosition or 0)]


def sample(values: Any, n: int = 5) -> list[Any]:
    return list(values)[:n]


# --------------------------------------------------------------------------------------------------
# The contract files
# --------------------------------------------------------------------------------------------------
def test_every_product_has_exactly_one_contract_file():
    assert set(PRODUCTS) >= SAMPLE_DOMAINS, "the workspace lost a sample domain"
    assert all(PRODUCTS.values()), "a domain without products"
    expected = {contract_path(domain, product) for domain, product in CASES}
    found = set((REPO_ROOT / "domains").glob("*/contracts/*.odcs.yaml"))
    assert sorted(expected - found) == [], "products without a contract"
    assert sorted(found - expected) == [], "contracts of unknown products"


@per_product
def test_contract_loads_and_matches_its_location(domain, product):
    contract = load_contract(domain, product)
    assert contract.apiVersion == "v3.1.0"
    assert contract.kind == "DataContract"
    assert contract.id == f"urn:mesh:{domain}:{product}"
    assert (contract.name, contract.dataProduct, contract.domain) == (product, product, domain)
    assert contract.status == "active"
    assert SEMVER.match(contract.version or ""), contract.version
    assert len(contract.schema_ or []) == 1, "one schema object: the product's table"
    table = contract.schema_[0]
    assert table.name == product
    assert table.physicalName == f"{domain}.{product}"
    assert (table.physicalType, table.logicalType) == ("table", "object")
    assert table.description


@per_product
def test_contract_is_valid_against_the_odcs_json_schema(domain, product):
    """The pydantic model ignores unknown nested keys; the JSON schema catches typos in them."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("open_data_contract_standard").joinpath("schema.json").read_text())
    document = yaml.safe_load(contract_path(domain, product).read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


@per_product
def test_contract_names_owners_readers_and_freshness(domain, product):
    contract = load_contract(domain, product)
    description = contract.description
    assert description and description.purpose and description.usage and description.limitations
    assert contract.team is not None and contract.team.name == domain
    owners = [m.username for m in contract.team.members or [] if m.role == "owner"]
    assert len(owners) == 1 and EMAIL.match(owners[0]), owners
    # the sample's teams; another domain names its own (`mesh new-domain --owner`)
    assert domain not in SAMPLE_DOMAINS or owners == [f"{domain}-owners@mesh.example"]
    roles = contract.roles or []
    # the sample's products have named readers; a new domain's start private (`roles: []` in the
    # template of `mesh new-domain`) until its team grants them
    assert roles or domain not in SAMPLE_DOMAINS, "at least one role may read the product"
    assert all(r.role and r.access == "read" and r.description for r in roles)
    latency = [(s.value, s.unit) for s in contract.slaProperties or [] if s.property == "latency"]
    assert len(latency) == 1, "one freshness promise (latency) per product"
    # the sample's domains promise what their teams agreed; a new domain states its own
    assert domain not in LATENCY or latency == [LATENCY[domain]]


@per_product
def test_every_column_is_typed_and_described(domain, product):
    contract = load_contract(domain, product)
    props = properties(contract)
    assert props
    names = [p.name for p in props]
    assert len(names) == len(set(names)), "column names repeat"
    for prop in props:
        assert prop.physicalType in LOGICAL_TYPES, (
            f"{prop.name}: {prop.physicalType!r} is not an Iceberg type"
        )
        assert prop.logicalType == LOGICAL_TYPES[prop.physicalType], prop.name
        assert prop.description, f"{prop.name} has no description"
        assert prop.required is not None, f"{prop.name}: say whether it is required"
        if prop.enum is not None:
            values = [e.value for e in prop.enum]
            assert values and None not in values and len(values) == len(set(values)), prop.name
    keyed = [p for p in props if p.primaryKey]
    assert sorted(p.primaryKeyPosition for p in keyed) == list(range(1, len(keyed) + 1))
    assert all(p.required for p in keyed), "primary key columns are required"


@per_product
def test_quality_rules_are_well_formed(domain, product):
    contract = load_contract(domain, product)
    names = {p.name for p in properties(contract)}
    table_quality = contract.schema_[0].quality or []
    assert {q.metric for q in table_quality} <= TABLE_METRICS
    assert all(q.description for q in table_quality)
    (row_count,) = table_rules(contract, "rowCount")
    assert row_count.mustBeGreaterThan is not None and row_count.mustBeGreaterThan >= 0
    for rule in table_rules(contract, "duplicateValues"):
        columns = (rule.arguments or {}).get("properties")
        assert columns and set(columns) <= names, columns
        assert rule.mustBe == 0
    has_key = (
        primary_key(contract)
        or any(p.unique for p in properties(contract))
        or table_rules(contract, "duplicateValues")
    )
    assert has_key, "every product declares a key"
    for prop in properties(contract):
        for rule in prop.quality or []:
            assert (rule.type, rule.engine) == ("custom", "greatExpectations"), prop.name
            assert rule.description, prop.name
        for expectation, kwargs in column_rules(prop):
            assert expectation in EXPECTATION_KWARGS, f"{prop.name}: {expectation}"
            assert kwargs and set(kwargs) <= EXPECTATION_KWARGS[expectation], f"{prop.name}: {kwargs}"
            if expectation == "expect_column_values_to_match_regex":
                assert prop.logicalType == "string", prop.name
                re.compile(kwargs["regex"])
            else:
                assert prop.logicalType in ("integer", "number"), prop.name
                low, high = kwargs.get("min_value"), kwargs.get("max_value")
                assert low is not None or high is not None, prop.name
                assert low is None or high is None or low < high, prop.name


# --------------------------------------------------------------------------------------------------
# The contracts against the tables of a fresh demo run
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublishedTable:
    columns: list[tuple[str, str]]  # (name, Iceberg type) in table order
    partition_columns: list[str]
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def published(demo) -> dict[str, PublishedTable]:
    """Every product's table after the session's `mesh demo` (a fresh local-profile MESH_HOME).

    The platform already gates publication on these contracts (blocking GX checks), so a contract the
    data breaks fails the demo here; the tests below then say which rule, column and values.
    """
    catalog = load_catalog(MeshSettings.from_env("local").replace(home=demo.home))
    tables = {}
    for domain, product in DEMO_CASES:
        table = catalog.load_table(f"{domain}.{product}")
        schema = table.schema()
        tables[f"{domain}.{product}"] = PublishedTable(
            columns=[(f.name, str(f.field_type)) for f in schema.fields],
            partition_columns=[schema.find_field(f.source_id).name for f in table.spec().fields],
            frame=table.scan().to_pandas(),
        )
    return tables


def slow_per_product(test):
    """Parametrize over the products the demo publishes; needs the demo run."""
    ids = [f"{domain}.{product}" for domain, product in DEMO_CASES]
    return pytest.mark.slow(pytest.mark.parametrize(("domain", "product"), DEMO_CASES, ids=ids)(test))


@slow_per_product
def test_columns_and_types_match_the_table(published, domain, product):
    contract, table = load_contract(domain, product), published[f"{domain}.{product}"]
    assert [(p.name, p.physicalType) for p in properties(contract)] == table.columns
    partitioned = sorted(
        (p for p in properties(contract) if p.partitioned), key=lambda p: p.partitionKeyPosition
    )
    assert [p.name for p in partitioned] == table.partition_columns


@slow_per_product
def test_required_columns_have_no_nulls(published, domain, product):
    frame = published[f"{domain}.{product}"].frame
    nulls = {
        p.name: int(frame[p.name].isna().sum())
        for p in properties(load_contract(domain, product))
        if p.required
    }
    assert {name: n for name, n in nulls.items() if n} == {}


@slow_per_product
def test_keys_have_no_duplicates(published, domain, product):
    """Unique columns, the primary key and every duplicateValues rule (missing values compare equal)."""
    contract, frame = load_contract(domain, product), published[f"{domain}.{product}"].frame
    keys = [[p.name] for p in properties(contract) if p.unique]
    if primary_key(contract):
        keys.append(primary_key(contract))
    keys += [list(rule.arguments["properties"]) for rule in table_rules(contract, "duplicateValues")]
    assert keys
    for key in keys:
        if len(key) == 1:
            repeated = frame[key[0]].dropna()
            repeated = repeated[repeated.duplicated(keep=False)]
        else:
            repeated = frame.loc[frame.duplicated(subset=key, keep=False), key]
        assert repeated.empty, (
            f"{key} repeats: {repeated.head().to_dict('records') if len(key) > 1 else sample(repeated)}"
        )


@slow_per_product
def test_enums_cover_the_data(published, domain, product):
    frame = published[f"{domain}.{product}"].frame
    outside = {}
    for prop in properties(load_contract(domain, product)):
        if prop.enum:
            allowed = {e.value for e in prop.enum}
            extra = set(frame[prop.name].dropna().unique()) - allowed
            if extra:
                outside[prop.name] = sorted(map(str, extra))
    assert outside == {}


@slow_per_product
def test_row_count(published, domain, product):
    (rule,) = table_rules(load_contract(domain, product), "rowCount")
    assert len(published[f"{domain}.{product}"].frame) > rule.mustBeGreaterThan


def _violations(values: pd.Series, expectation: str, kwargs: dict[str, Any]) -> pd.Series:
    """Values breaking one rule, with Great Expectations semantics (nulls ignored)."""
    values = values.dropna()
    if expectation == "expect_column_values_to_match_regex":
        pattern = re.compile(kwargs["regex"])
        return values[[not pattern.search(str(v)) for v in values]]
    bad = pd.Series(False, index=values.index)
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None:
        bad |= values <= low if kwargs.get("strict_min") else values < low
    if high is not None:
        bad |= values >= high if kwargs.get("strict_max") else values > high
    return values[bad]


@slow_per_product
def test_column_rules_hold(published, domain, product):
    frame = published[f"{domain}.{product}"].frame
    failures = {}
    checked = 0
    for prop in properties(load_contract(domain, product)):
        for expectation, kwargs in column_rules(prop):
            checked += 1
            bad = _violations(frame[prop.name], expectation, kwargs)
            if not bad.empty:
                failures[f"{prop.name} {expectation} {kwargs}"] = f"{len(bad)} rows, e.g. {sample(bad)}"
    assert checked, "the contract has column rules"
    assert failures == {}
