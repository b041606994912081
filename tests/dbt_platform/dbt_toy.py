"""A small dbt project over a toy Iceberg source, to test the platform's dbt path in seconds."""

import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from mesh_assets.dbt.prepare import prepare
from mesh_assets.lakehouse.catalog import load_catalog
from mesh_assets.lakehouse.tables import IcebergTables, TableRef
from mesh_assets.settings import get_settings

DOMAIN = "toy"

PROJECT = {
    "dbt_project.yml": """
        name: toy
        version: "1.0.0"
        config-version: 2
        profile: mesh
        models:
          toy:
            staging:
              +materialized: ephemeral
            marts:
              +materialized: table
    """,
    "models/sources.yml": """
        version: 2
        sources:
          - name: toy
            schema: toy
            config:
              meta: {plugin: mesh_iceberg}
            tables:
              - name: events
          - name: refdata
            schema: refdata
            config:
              meta: {plugin: mesh_iceberg}
            tables:
              - name: sites
    """,
    "models/staging/stg_events.sql": """
        select site_id, cast(day as date) as day, cast(amount as double) as amount
        from {{ source('toy', 'events') }}
    """,
    "models/marts/site_totals.sql": """
        select e.site_id, s.site_name, count(*) as n_events, sum(e.amount) as total_amount
        from {{ ref('stg_events') }} as e
        inner join {{ source('refdata', 'sites') }} as s on s.site_id = e.site_id
        group by e.site_id, s.site_name
    """,
    "models/marts/daily_totals.sql": """
        {{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['day'],
                  meta={'mesh': {'partitioned_by': 'yearly', 'partition_column': 'day', 'start': '2020'}}) }}
        select day, count(*) as n_events, sum(amount) as total_amount
        from {{ ref('stg_events') }}
        where 1 = 1
        {% if var('mesh_window_start', none) is not none %}
          and day >= cast('{{ var("mesh_window_start") }}' as date)
          and day < cast('{{ var("mesh_window_end") }}' as date)
        {% endif %}
        group by day
    """,
    "models/marts/marts.yml": """
        version: 2
        models:
          - name: site_totals
            columns:
              - name: site_id
                data_tests:
                  - unique
                  - not_null
                  - relationships:
                      arguments:
                        to: source('refdata', 'sites')
                        field: site_id
              - name: site_name
                data_tests:
                  - accepted_values:
                      arguments:
                        values: ['north', 'south', 'east']
          - name: daily_totals
            columns:
              - name: day
                data_tests: [unique, not_null]
    """,
}


def write_project(root: Path, extra: dict[str, str] | None = None) -> Path:
    for name, text in {**PROJECT, **(extra or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    prepare(root, get_settings())
    return root


@pytest.fixture
def toy_project(tmp_path: Path, mesh_home: Path) -> Path:
    project = write_project(tmp_path / "toy")
    yield project
    shutil.rmtree(project / "target", ignore_errors=True)


def write_source(name: str, frame: pd.DataFrame, mode: str = "overwrite") -> None:
    namespace, table = name.split(".")
    IcebergTables(load_catalog(get_settings())).write(TableRef(namespace, table), frame, mode=mode)


def events(days: list[str], site: str = "s1", amount: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"site_id": [site] * len(days), "day": pd.to_datetime(days), "amount": [amount] * len(days)}
    )


SITES = pd.DataFrame({"site_id": ["s1", "s2"], "site_name": ["north", "south"]})
