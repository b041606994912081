"""Another drop of the same eight files runs the whole mesh unchanged, and every contract passes.

Issue #15: "Tried as a new user would, with another drop of the same eight files (ten companies,
other sectors), the main job stopped at the first contract: every contract's minimum row count is
sized to the sample." A contract describes the product, not the sample; nothing in the code or the
contracts may depend on a company id, name, count or row of the sample.

The drop is generated here, into tmp: ten made-up companies in sectors and units the sample barely
or never uses (autos in passenger-km, trucking in tonne-km, aluminium, coal, buildings in m², gas
utilities in GJ, oil & gas in TJ, ...), with emissions, production, one reported intensity, targets
and a portfolio. ``MESH_RAW_DIR`` points at it (benchmarks are the shipped ones: they are reference
data, not the drop). Each domain's location is materialized in-process with the platform's
resources, in dependency order, and every asset check (the contracts) must pass.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mesh_assets.definitions import build_domain_definitions
from mesh_assets.settings import REPO_ROOT, get_settings

SAMPLE = REPO_ROOT / "data" / "raw"
DOMAINS = ("benchmarks", "companies", "emissions", "portfolio_alignment")
YEARS = range(2017, 2023)

# id, name, country, sector, currency, production unit, production 2017, S1 t, S2 t, S3 t, reduction/yr
COMPANIES: list[tuple[str, str, str, str, str, str, float, float, float, float, float]] = [
    ("QA1000000001", "Northwind Motors", "DE", "Autos", "EUR", "Mpkm", 9.0e4, 2.0e6, 1.0e6, 6.0e7, 0.04),
    ("QA1000000002", "Fjord Haulage", "NO", "Trucking", "NOK", "Mtkm", 3.0e3, 4.0e5, 1.0e4, 5.0e4, 0.02),
    (
        "QA1000000003",
        "Bauxite Bay Metals",
        "AU",
        "Aluminum",
        "USD",
        "t Aluminum",
        1.2e6,
        9.0e6,
        6.0e6,
        2.0e6,
        0.01,
    ),
    ("QA1000000004", "Black Ridge Coal", "ZA", "Coal", "USD", "Mt Coal", 40.0, 3.0e6, 5.0e5, 9.0e7, 0.0),
    (
        "QA1000000005",
        "Harbour Offices",
        "GB",
        "Commercial Buildings",
        "GBP",
        "m**2",
        3.0e6,
        2.0e4,
        4.0e4,
        1.0e5,
        0.06,
    ),
    (
        "QA1000000006",
        "Prairie Gas Distribution",
        "CA",
        "Gas Utilities",
        "USD",
        "PJ",
        300.0,
        9.0e5,
        1.0e5,
        1.5e7,
        0.03,
    ),
    (
        "QA1000000007",
        "Coral Sea Petroleum",
        "MY",
        "Oil & Gas",
        "USD",
        "mmboe",
        250.0,
        1.5e7,
        1.0e6,
        9.0e7,
        0.02,
    ),
    ("QA1000000008", "Alpine Steelworks", "AT", "Steel", "EUR", "Mt Steel", 6.0, 1.1e7, 1.5e6, 3.0e6, 0.03),
    ("QA1000000009", "Pampas Cement", "AR", "Cement", "USD", "kt Cement", 2.0e4, 1.2e7, 8.0e5, 1.0e6, 0.02),
    (
        "QA1000000010",
        "Lagoon Power",
        "BR",
        "Electricity Utilities",
        "USD",
        "GWh",
        5.0e4,
        1.5e7,
        2.0e5,
        4.0e6,
        0.05,
    ),
]
FX_EUR = {"EUR": 1.0, "USD": 0.94, "NOK": 0.089, "GBP": 1.15}


def _long(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=[
            "company_name", "company_lei", "company_id", "report_date", "metric", "submetric",
            "boundary", "unit", "base_year", "year", "value", "source_row",
        ],
    )  # fmt: skip


def write_drop(root: Path) -> None:
    """The eight files of an ITR V2 drop for :data:`COMPANIES` (plus the shipped benchmarks)."""
    sample = root / "itr-sample"
    sample.mkdir(parents=True)
    shutil.copytree(SAMPLE / "itr-benchmarks", root / "itr-benchmarks")
    shutil.copy2(SAMPLE / "itr-sample" / "definitions.csv", sample / "definitions.csv")
    fundamentals, esg, emissions, production, intensities, targets, portfolio = [], [], [], [], [], [], []
    row = 1
    for i, (cid, name, country, sector, cur, unit, prod0, s1, s2, s3, cut) in enumerate(COMPANIES):
        size = 1e9 * (i + 2)
        fundamentals.append(
            {
                "company_name": name, "company_lei": "", "company_id": cid, "country": country, "region": "",
                "sector": sector, "exposure": "equity", "currency": cur,
                "fx_quote": "" if cur == "EUR" else "EUR", "fx_rate": "" if cur == "EUR" else FX_EUR[cur],
                "report_date": "2022-12-31", "market_cap": size, "revenue": size / 2, "ev": size * 1.2,
                "evic": size * 1.3, "assets": size * 1.5, "debt": size * 0.3, "cash": size * 0.1,
                "shares outstanding": 1e8 * (i + 1), "share price on report date": 10.0 * (i + 1),
            }
        )  # fmt: skip
        series = {
            ("s1", "t CO2e"): s1, ("s2", "t CO2e"): s2, ("s3", "t CO2e"): s3, ("production", unit): prod0,
        }  # fmt: skip
        for (metric, u), start in series.items():
            row += 1
            values = {y: round(start * (1 - cut) ** (y - YEARS[0]) * (1.02 if metric == "production" else 1), 3)
                      for y in YEARS}  # fmt: skip
            esg.append(
                {"source_row": row, "company_name": name, "company_lei": "", "company_id": cid, "metric": metric,
                 "submetric": "", "boundary": "", "unit": u, "report_date": "2022-12-31", "base_year": "",
                 **{str(y): "" for y in range(2015, YEARS[0])}, **{str(y): v for y, v in values.items()}}
            )  # fmt: skip
            target = production if metric == "production" else emissions
            for y, v in values.items():
                target.append(
                    {"company_name": name, "company_lei": "", "company_id": cid, "report_date": "2022-12-31",
                     "metric": metric, "submetric": "", "boundary": "", "unit": u, "base_year": "", "year": y,
                     "value": v, "source_row": row}
                )  # fmt: skip
        row += 1
        intensities.append(
            {"company_name": name, "company_lei": "", "company_id": cid, "report_date": "2022-12-31",
             "metric": "s1 intensity", "submetric": "", "boundary": "", "unit": f"t CO2e/({unit})", "base_year": "",
             "year": 2022, "value": round(s1 / prod0, 6), "source_row": row}
        )  # fmt: skip
        targets.append(
            {"company_name": name, "company_lei": "", "company_id": cid, "country": country, "netzero_year": 2050,
             "target_type": "absolute", "target_scope": "S1+S2", "target_start_year": 2020, "target_base_year": 2019,
             "target_base_year_qty": s1 + s2, "target_base_year_unit": "t CO2e", "target_year": 2030,
             "target_reduction_ambition": 0.3 + 0.02 * i, "pdf": "", "page": ""}
        )  # fmt: skip
        portfolio.append(
            {"company_name": name, "company_lei": "", "company_id": cid, "company_isin": cid,
             "investment_value [EUR]": 1e7 * (i + 1)}
        )  # fmt: skip
    pd.DataFrame(fundamentals).to_csv(sample / "fundamentals.csv", index=False)
    pd.DataFrame(esg).to_csv(sample / "esg_data.csv", index=False)
    _long(emissions).to_csv(sample / "emissions.csv", index=False)
    _long(production).to_csv(sample / "production.csv", index=False)
    _long(intensities).to_csv(sample / "emission_intensities.csv", index=False)
    pd.DataFrame(targets).to_csv(sample / "targets.csv", index=False)
    pd.DataFrame(portfolio).to_csv(sample / "portfolio.csv", index=False)


def _runs(defs: dg.Definitions) -> list[tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]]:
    """The domain's materializable assets, one run per partitioning (as ``mesh demo`` launches them)."""
    groups: dict[object, tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]] = {}
    for node in defs.resolve_asset_graph().asset_nodes:
        if not node.is_materializable:
            continue
        part = node.partitions_def
        groups.setdefault(id(part) if part is None else repr(part), ([], part))[0].append(node.key)
    # unpartitioned first: partitioned dbt marts read the unpartitioned products of their domain
    return sorted(groups.values(), key=lambda group: group[1] is not None)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dg.ExecuteInProcessResult]]:
    root = tmp_path_factory.mktemp("other_drop")
    write_drop(root / "raw")
    results: dict[str, dg.ExecuteInProcessResult] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(root / "mesh"))
        mp.setenv("MESH_PROFILE", "local")
        mp.setenv("MESH_RAW_DIR", str(root / "raw"))
        mp.delenv("DAGSTER_HOME", raising=False)
        assert get_settings().raw_dir == (root / "raw").resolve()
        with dg.DagsterInstance.ephemeral() as instance:
            for domain in DOMAINS:
                defs = build_domain_definitions(domain, importlib.import_module(f"domains.{domain}.assets"))
                job = defs.resolve_implicit_global_asset_job_def()
                for keys, part in _runs(defs):
                    tags = {}
                    if part is not None:
                        pkeys = part.get_partition_keys(dynamic_partitions_store=instance)
                        tags = {
                            "dagster/asset_partition_range_start": pkeys[0],
                            "dagster/asset_partition_range_end": pkeys[-1],
                        }
                    result = job.execute_in_process(
                        instance=instance, asset_selection=keys, tags=tags, raise_on_error=False
                    )
                    label = f"{domain}:{'/'.join(k.to_user_string() for k in keys)}"
                    failures = [e.message for e in result.all_events if e.is_step_failure]
                    assert result.success, f"{label} failed on another drop: {failures}"
                    results[label] = result
            yield results


def test_every_domain_runs_on_another_drop_and_its_contracts_pass(
    published: dict[str, dg.ExecuteInProcessResult],
) -> None:
    evaluations = [e for r in published.values() for e in r.get_asset_check_evaluations()]
    assert evaluations, "no contract check ran"
    failed = [
        (e.asset_key.to_user_string(), e.check_name, {k: str(v.value)[:300] for k, v in e.metadata.items()})
        for e in evaluations
        if not e.passed
    ]
    assert not failed, f"contracts failed on another drop: {failed}"
    checked = {e.asset_key.to_user_string() for e in evaluations}
    for product in (
        "companies/company_master",
        "emissions/reported_emissions",
        "emissions/production",
        "emissions/company_targets",
        "portfolio_alignment/company_temperature_scores",
    ):
        assert product in checked, f"{product} was not checked"


def test_the_other_drop_is_scored_and_every_holding_accounted_for(
    published: dict[str, dg.ExecuteInProcessResult],
) -> None:
    from mesh_assets.lakehouse.catalog import load_catalog

    catalog = load_catalog(get_settings())
    scores = catalog.load_table("portfolio_alignment.company_temperature_scores").scan().to_pandas()
    ids = {c[0] for c in COMPANIES}
    assert ids <= set(scores["company_id"]), "a company of the drop has no score row"
    s1s2 = scores[scores["scope"] == "S1S2"]
    assert s1s2["temperature_score_c"].between(1.0, 4.4).all()
    # Generated with emissions and production in each company's benchmark unit: most are data-based.
    assert (s1s2["score_source"] != "default").sum() >= len(COMPANIES) // 2, s1s2[
        ["company_id", "sector", "score_source", "default_reason"]
    ].to_string()
    portfolio = catalog.load_table("portfolio_alignment.portfolio_temperature_score").scan().to_pandas()
    assert not portfolio.empty
    assert (portfolio["n_holdings"] == len(COMPANIES)).all()


def test_an_emission_of_1e30_t_fails_the_contract(tmp_path: Path) -> None:
    """Issue #15: "an emission of 1e30 t passes cleaning and the contract today"; the bound stops it."""
    from domains.emissions import transforms as emissions
    from mesh_assets.contracts.checks import validate_frame
    from mesh_assets.contracts.model import load_contract

    write_drop(tmp_path)
    raw = pd.read_csv(tmp_path / "itr-sample" / "emissions.csv")
    contract = load_contract(
        REPO_ROOT / "domains" / "emissions" / "contracts" / "reported_emissions.odcs.yaml"
    )

    def failures(frame: pd.DataFrame) -> list[tuple[str, str | None]]:
        product = emissions.reported_emissions(frame).data
        return [(o.expectation, o.column) for o in validate_frame(contract, product) if not o.success]

    assert failures(raw) == []
    raw.loc[0, ["unit", "value"]] = ["t CO2e", 1e30]
    assert ("expect_column_values_to_be_between", "emissions_t_co2e") in failures(raw)
