"""Measure one deliberate difference: ITR averages the figures given for one company, metric and year.

ITR 1.1.10's template loader (``_estimated_value``, grouped by sector, company, metric and submetric) takes
the mean of every figure for the same company, metric, submetric and year: those of several reports, and
those of several boundaries (AES's 2021 production is the mean of its gross and net generation). The
mesh's emissions domain keeps the latest report (a restatement supersedes the figure it restates) and one
boundary. ITR also ranks submetrics before report dates (an older report's figure without a submetric
beats a later "total" one). This script rewrites a drop's ``emissions.csv``, ``production.csv`` and
``emission_intensities.csv`` so that each such group carries its mean (converted into the latest
report's unit, rows ITR ignores left out) and each company-level figure the one of the submetric ITR
ranks first, runs the mesh on the original and on the rewritten drop, and prints both comparisons with
the oracle's results: the effect this difference has on the sample.

    .venv/bin/python tools/itr_oracle/report_dates.py [--raw data/raw]

Needs the oracle's results (``deploy/local/itr_oracle.sh``, or any run of ``tests/oracle``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import compare
import oracle

KEY = ["company_id", "metric", "submetric", "year"]


def averaged(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every (company, metric, submetric, year) given several figures (by several reports or
    for several boundaries) set to the mean of their figures, in the latest report's unit; rows ITR
    ignores (``base_year == 'x'``) and groups with an unconvertible unit are left as they are."""
    from mesh_assets.ingest.units import UnknownUnitError, convert

    out = df.copy()
    kept = df[df["base_year"].astype(str).str.strip().str.lower() != "x"]
    for _, group in kept.groupby(kept[KEY].fillna("").astype(str).agg("|".join, axis=1)):
        if len(group) < 2:
            continue
        unit = str(group.sort_values("report_date")["unit"].iloc[-1])
        try:
            values = [
                convert(float(v), str(u), unit) for v, u in zip(group["value"], group["unit"], strict=True)
            ]
        except (UnknownUnitError, ValueError):
            continue
        out.loc[group.index, "value"] = sum(values) / len(values)
        out.loc[group.index, "unit"] = unit
    return out


# ITR 1.1.10's template loader: the submetrics naming a sector rank first (the mesh's own-sector rule
# does the same and they are left alone here), then these, then any other; per year the first with a figure
SECTOR_SUBMETRICS = frozenset(
    {
        "cement",
        "clinker",
        "chemicals",
        "electricity",
        "generation",
        "gas",
        "distribution",
        "coal",
        "lng",
        "ng",
        "oil",
    }
)
SUBMETRIC_RANK = {
    "production": ("operated", "own", "revenue", "equity", "", "total", "gross", "net", "full"),
    "emissions": (
        "own",
        "",
        "all",
        "combined",
        "total",
        "net",
        "location",
        "location-based",
        "market",
        "market-based",
    ),
}


def ranked(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` (after :func:`averaged`) with every company-level (company, metric, year) set to the figure of
    the submetric ITR ranks first among those with one that year (``SUBMETRIC_RANK``): ITR ranks submetrics
    before report dates, so an older report's figure without a submetric beats a later "total" one.
    Scope-3 figures (ranked by category) and sector submetrics are left as they are."""
    out = df.copy()
    order = SUBMETRIC_RANK[kind]
    submetric = df["submetric"].fillna("").astype(str).str.strip().str.lower()
    metric = df["metric"].astype(str).str.strip().str.lower()
    company_level = ~submetric.isin(SECTOR_SUBMETRICS) & ~metric.str.startswith("s3")
    company_level &= df["base_year"].astype(str).str.strip().str.lower() != "x"
    rows = df[company_level]
    for _, group in rows.groupby([rows["company_id"], metric[company_level], rows["year"]]):
        sub = submetric[group.index]
        best = min(sub, key=lambda s: order.index(s) if s in order else len(order))
        chosen = group[sub == best].iloc[-1]
        out.loc[group.index, "value"] = chosen["value"]
        out.loc[group.index, "unit"] = chosen["unit"]
    return out


def averaged_drop(raw: Path, dest: Path) -> Path:
    """A copy of the drop ``raw`` under ``dest`` whose emissions and production carry ITR's figures:
    :func:`averaged`, then :func:`ranked` (intensities: :func:`averaged` only)."""
    shutil.copytree(raw, dest)
    for name, kind in (
        ("emissions.csv", "emissions"),
        ("production.csv", "production"),
        ("emission_intensities.csv", None),
    ):
        path = dest / "itr-sample" / name
        figures = averaged(pd.read_csv(path))
        (ranked(figures, kind) if kind else figures).to_csv(path, index=False)
    return dest


def comparison_rows(label: str, scores: pd.DataFrame, itr: dict) -> list[str]:
    """Markdown rows ``| label | scope | compared | within | median | p90 |``, one per scope."""
    rows = []
    for scope in compare.SCOPES:
        r = compare.compare_companies(scores, itr, scope)
        rows.append(
            f"| {label} | {scope} | {r.n_compared} | {r.n_within_tolerance} | "
            f"{r.median_diff_c:.3f} | {r.p90_diff_c:.3f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=compare.REPO / "data" / "raw")
    args = parser.parse_args(argv)
    itr = oracle.itr_results(args.raw / "itr-sample", args.raw / "itr-benchmarks", compare.subprocess_env())
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "latest report, one boundary (the mesh)": args.raw,
            "mean of the figures (ITR)": averaged_drop(args.raw, Path(tmp) / "raw"),
        }
        print("| figures | scope | compared | within 0.01 °C | median diff | p90 diff |")
        print("| :--- | :--- | ---: | ---: | ---: | ---: |")
        for label, raw in runs.items():
            print("\n".join(comparison_rows(label, compare.mesh_products(raw)["scores"], itr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
