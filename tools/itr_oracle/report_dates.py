"""Measure one deliberate difference: ITR averages the figures given for one company, metric and year.

ITR 1.1.10's template loader (``_estimated_value``, grouped by sector, company, metric and submetric) takes
the mean of every figure for the same company, metric, submetric and year: those of several reports, and
those of several boundaries (AES's 2021 production is the mean of its gross and net generation). The
mesh's emissions domain keeps the latest report (a restatement supersedes the figure it restates) and one
boundary. This script rewrites a drop's ``emissions.csv`` and ``production.csv`` so that each such group
carries its mean (converted into the latest report's unit, rows ITR ignores left out), runs the mesh on
the original and on the rewritten drop, and prints both comparisons with the oracle's results: the
effect this difference has on the sample.

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


def averaged_drop(raw: Path, dest: Path) -> Path:
    """A copy of the drop ``raw`` under ``dest`` whose emissions and production carry :func:`averaged`."""
    shutil.copytree(raw, dest)
    for name in ("emissions.csv", "production.csv", "emission_intensities.csv"):
        path = dest / "itr-sample" / name
        averaged(pd.read_csv(path)).to_csv(path, index=False)
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
