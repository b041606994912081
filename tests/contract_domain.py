"""A throwaway `trades` domain with one ODCS contract, for the contract/WAP tests of both profiles."""

import importlib
import sys
import textwrap
from pathlib import Path

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:mesh:trades:positions
name: positions
version: 1.2.0
status: active
domain: trades
dataProduct: positions
description:
  purpose: Open positions per account, the book of record for risk.
team:
  name: trades
  members:
    - username: trades-owners@mesh.example
      role: owner
roles:
  - role: risk-analysts
    access: read
slaProperties:
  - property: latency
    value: 24
    unit: h
schema:
  - name: positions
    physicalName: trades.positions
    physicalType: table
    logicalType: object
    quality:
      - metric: rowCount
        mustBeGreaterThan: 0
      - metric: duplicateValues
        arguments: {properties: [account, instrument]}
        mustBe: 0
    properties:
      - name: account
        physicalType: string
        logicalType: string
        required: true
        description: Account id.
      - name: instrument
        physicalType: string
        logicalType: string
        required: true
        description: ISIN of the instrument.
        quality:
          - type: custom
            engine: greatExpectations
            implementation:
              expectation: expect_column_values_to_match_regex
              kwargs: {regex: "^[A-Z]{2}[A-Z0-9]{9}[0-9]$"}
      - name: side
        physicalType: string
        logicalType: string
        required: true
        description: Long or short.
        enum: [{value: long}, {value: short}]
      - name: weight
        physicalType: double
        logicalType: number
        description: Share of the book, 0..1.
        quality:
          - type: custom
            engine: greatExpectations
            implementation:
              expectation: expect_column_values_to_be_between
              kwargs: {min_value: 0, max_value: 1}
"""

ASSETS = """
import dagster as dg
import pandas as pd

ROWS = {"value": None}

@dg.asset(key_prefix="trades")
def positions() -> pd.DataFrame:
    return ROWS["value"]

@dg.asset(key_prefix="trades", ins={"positions": dg.AssetIn(key_prefix="trades")})
def exposure(positions: pd.DataFrame) -> pd.DataFrame:
    return positions.groupby("side", as_index=False)["weight"].sum()
"""

GOOD = {
    "account": ["A1", "A1", "A2"],
    "instrument": ["US0378331005", "DE0007164600", "US0378331005"],
    "side": ["long", "short", "long"],
    "weight": [0.5, 0.2, 0.3],
}


def build_trades_domain(root: Path):
    """Write the `trades_domain` package under ``root``, import it fresh, and build its definitions."""
    package = root / "trades_domain"
    (package / "contracts").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "assets.py").write_text(textwrap.dedent(ASSETS))
    (package / "contracts" / "positions.odcs.yaml").write_text(CONTRACT)
    sys.path.insert(0, str(root))
    for name in [m for m in sys.modules if m.startswith("trades_domain")]:
        del sys.modules[name]
    try:
        assets = importlib.import_module("trades_domain.assets")
    finally:
        sys.path.remove(str(root))
    from mesh_assets.definitions import build_domain_definitions

    return assets, build_domain_definitions("trades", assets)


def run_trades(domain, rows, instance):
    import pandas as pd

    assets, defs = domain
    assets.ROWS["value"] = pd.DataFrame(rows)
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
