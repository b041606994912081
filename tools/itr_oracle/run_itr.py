"""Score a drop of ITR sample CSVs with the OS-Climate ITR tool (itr 1.1.10) and write the results as JSON.

Runs *inside* the oracle venv built by ``deploy/local/itr_oracle.sh`` (numpy 1.26, pandas 2.2, pint 0.24),
never in the project's own venv: it imports ``ITR``, which the project does not depend on.

Why a workbook: the sample CSVs were exported from the sheets of ITR's V2 template workbook
(``ITR V2 input data``, ``ITR V2 esg data``, ``ITR target input data``, ``Portfolio``). Writing them back into
those sheets lets ITR's own loader (``TemplateProviderCompany``) do everything it does on its own files:
fill-down of merged cells, unit parsing, best-value selection, sector splits. The only liberty taken is
the one the CSVs already took (empty rows dropped); rows are written in their source order so ITR's
forward-fill of ``report_date`` behaves as it does on the original sheet.

Output (one JSON document): ``companies`` (one row per company id, scope and time frame, with ITR's
score, trajectory and target scores, overshoots, cumulative budget/trajectory/target, score type),
``portfolio`` (one row per aggregation method, scope and time frame: score and the share of holdings
scored) and ``holdings`` (portfolio rows ITR dropped because it has no company data for them).

Usage: python run_itr.py --raw DIR --benchmarks DIR --out FILE [--benchmark-file NAME]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

SHEETS = {
    "fundamentals.csv": "ITR V2 input data",
    "esg_data.csv": "ITR V2 esg data",
    "targets.csv": "ITR target input data",
    "portfolio.csv": "Portfolio",
}
SCOPES = ("S1", "S1S2", "S3", "S1S2S3")
METHODS = ("WATS", "TETS", "MOTS", "EOTS", "ECOTS", "AOTS", "ROTS")
COMPANY_COLUMNS = (
    "company_name",
    "sector",
    "region",
    "time_frame",
    "temperature_score",
    "trajectory_score",
    "target_score",
    "trajectory_overshoot_ratio",
    "target_overshoot_ratio",
    "score_result_type",
    "cumulative_budget",
    "cumulative_scaled_budget",
    "cumulative_trajectory",
    "cumulative_target",
    "benchmark_temperature",
    "benchmark_global_budget",
    "target_probability",
    "ghg_s1s2",
    "ghg_s3",
    "investment_value",
    "company_market_cap",
    "company_enterprise_value",
    "company_ev_plus_cash",
    "company_total_assets",
    "company_revenue",
    "base_year_production",
    "ei_at_base_year",
)


def _cell(value):
    """A CSV cell as Excel would hold it: numbers as numbers, text as text, blanks as None."""
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, int | float):
        return value
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def write_workbook(raw: Path, path: Path) -> None:
    """Rebuild the template workbook ITR's loader reads from the CSV drop in ``raw``."""
    import pandas as pd

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, sheet in SHEETS.items():
            df = pd.read_csv(raw / name, dtype=str, keep_default_na=False, na_values=[""])
            if name == "esg_data.csv":
                # Source order (so ITR's forward fill of report_date matches the original sheet).
                df = df.sort_values("source_row", key=lambda s: s.astype(int)).drop(columns="source_row")
            for col in df.columns:
                if col in ("report_date",) or col.endswith("_date"):
                    df[col] = pd.to_datetime(df[col], errors="coerce")
                elif col not in ("company_id", "company_isin", "company_lei", "company_name", "submetric"):
                    df[col] = df[col].map(_cell).astype(object)
            df.to_excel(writer, sheet_name=sheet, index=False)


def _jsonable(value):
    if value is None:
        return None
    if hasattr(value, "m") and hasattr(value, "u"):
        value = value.m
    if hasattr(value, "nominal_value"):
        value = value.nominal_value
    if hasattr(value, "name") and not isinstance(value, str):  # enums
        return value.name
    if isinstance(value, int | float):
        return None if isinstance(value, float) and not math.isfinite(value) else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="directory with the eight sample CSVs")
    parser.add_argument("--benchmarks", type=Path, required=True, help="directory with ITR benchmark JSONs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--benchmark-file", default="benchmark_EI_OECM_S3.json")
    parser.add_argument("--production-file", default="benchmark_production_OECM.json")
    parser.add_argument("--benchmark-id", default="OECM_1_5C")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    started = time.monotonic()

    import ITR
    import pandas as pd
    from ITR.data.base_providers import BaseProviderIntensityBenchmark, BaseProviderProductionBenchmark
    from ITR.data.data_warehouse import DataWarehouse
    from ITR.data.template import TemplateProviderCompany
    from ITR.interfaces import EScope, ETimeFrames, IEIBenchmarkScopes, IProductionBenchmarkScopes
    from ITR.portfolio_aggregation import PortfolioAggregationMethod
    from ITR.temperature_score import TemperatureScore

    with tempfile.TemporaryDirectory() as tmp:
        workbook = Path(tmp) / "itr_sample.xlsx"
        write_workbook(args.raw, workbook)

        prod_bm = BaseProviderProductionBenchmark(
            production_benchmarks=IProductionBenchmarkScopes.model_validate(
                json.loads((args.benchmarks / args.production_file).read_text())
            )
        )
        ei_bm = BaseProviderIntensityBenchmark(
            EI_benchmarks=IEIBenchmarkScopes.model_validate(
                json.loads((args.benchmarks / args.benchmark_file).read_text())
            )
        )
        company_data = TemplateProviderCompany(excel_path=str(workbook))
        warehouse = DataWarehouse(company_data, prod_bm, ei_bm)

        df_portfolio = pd.read_excel(workbook, sheet_name="Portfolio", dtype={"company_lei": str})
    for col in list(df_portfolio.columns):
        match = re.match(r"investment_value\s*\[([A-Za-z]{3})\]", str(col))
        if match:
            df_portfolio = df_portfolio.rename(columns={col: "investment_value"})
            df_portfolio["investment_value"] = df_portfolio["investment_value"].astype(f"pint[{match[1]}]")
    portfolio = ITR.utils.dataframe_to_portfolio(df_portfolio)
    known = set(warehouse.company_data.get_company_ids())

    scopes = [EScope[s] for s in SCOPES]
    data = ITR.utils.get_data(warehouse, portfolio)
    ts = TemperatureScore(time_frames=[ETimeFrames.LONG], scopes=scopes)
    scores = ts.calculate(data=data.copy())

    companies = []
    flat = scores.reset_index()
    for _, row in flat.iterrows():
        rec = {"company_id": str(row["company_id"]), "scope": row["scope"].name}
        for col in COMPANY_COLUMNS:
            if col not in flat.columns:
                continue
            value = row[col]
            if col.startswith("cumulative_") or col.startswith("ghg_"):
                value = value.to("t CO2e") if hasattr(value, "to") else value
            if col == "time_frame":
                value = value.value if hasattr(value, "value") else value
            rec[col] = _jsonable(value)
        companies.append(rec)
    companies = [dict(t) for t in {tuple(sorted(c.items(), key=lambda kv: kv[0])) for c in companies}]

    figures = []
    for method in METHODS:
        ts.aggregation_method = PortfolioAggregationMethod[method]
        aggregations = ts.aggregate_scores(scores.copy())
        long = getattr(aggregations, "long", None)
        for scope in SCOPES:
            agg = getattr(long, scope, None) if long is not None else None
            if agg is None:
                continue
            top = [
                {"company_id": c.company_id, "contribution_relative": _jsonable(c.contribution_relative)}
                for c in (agg.all.contributions or [])[:5]
            ]
            figures.append(
                {
                    "aggregation": method,
                    "scope": scope,
                    "time_frame": "LONG",
                    "temperature_score_c": _jsonable(agg.all.score),
                    "proportion": _jsonable(agg.all.proportion),
                    "influence_percentage": _jsonable(agg.influence_percentage),
                    "top_contributors": top,
                }
            )

    holdings = [
        {
            "company_id": p.company_id,
            "investment_value": _jsonable(p.investment_value),
            "scored_by_itr": p.company_id in known,
        }
        for p in portfolio
    ]
    out = {
        "tool": "itr",
        "tool_version": getattr(ITR, "__version__", "1.1.10"),
        "benchmark_id": args.benchmark_id,
        "benchmark_file": args.benchmark_file,
        "production_file": args.production_file,
        "seconds": round(time.monotonic() - started, 1),
        "companies": sorted(companies, key=lambda c: (c["company_id"], c["scope"])),
        "portfolio": figures,
        "holdings": holdings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True))
    print(
        f"itr {out['tool_version']}: {len(companies)} company scores, {len(figures)} portfolio figures, "
        f"{sum(not h['scored_by_itr'] for h in holdings)} of {len(holdings)} holdings dropped -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
