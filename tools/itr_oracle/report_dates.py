"""Measure one deliberate difference: ITR averages the figures given for one company, metric and year.

ITR 1.1.10's template loader (``_estimated_value``, grouped by sector, company, metric and submetric) takes
the mean of every figure for the same company, metric, submetric and year: those of several reports, and
those of several boundaries (AES's 2021 production is the mean of its gross and net generation). The
mesh's emissions domain keeps the latest report (a restatement supersedes the figure it restates) and one
boundary. ITR also ranks submetrics before report dates (an older report's figure without a submetric
beats a later "total" one), and picks scope 3 by its own ranking: the sector's category, a total named
exactly "", "all", "combined" or "total", category 3 or 11, else the mean of every other submetric (it
lists its other categories by name after mapping them to numbers, so they all fall there). This script
rewrites a drop's ``emissions.csv``, ``production.csv`` and ``emission_intensities.csv`` so that each
such group carries its mean (converted into the latest report's unit, rows ITR ignores left out), each
company-level figure the one of the submetric ITR ranks first and each company's scope 3 the one ITR
picks, runs the mesh on the original and on the rewritten drop, and prints both comparisons with the
oracle's results: the effect this difference has on the sample.

    .venv/bin/python tools/itr_oracle/report_dates.py [--raw data/raw]

Needs the oracle's results (``deploy/local/itr_oracle.sh``, or any run of ``tests/oracle``).
"""

from __future__ import annotations

import argparse
import re
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


# ITR 1.1.10's scope-3 categories by name (``s3_category_rdict`` and its ``_alt1`` variants), lower-cased
ITR_S3_CATEGORIES = {
    "purchased goods and services": "1",
    "capital goods": "2",
    "fuel- and energy-related activities": "3",
    "fuel and energy-related activities": "3",
    "upstream transportation and distribution": "4",
    "upstream transportation": "4",
    "waste generated in operations": "5",
    "business travel": "6",
    "employee commuting": "7",
    "upstream leased assets": "8",
    "leased assets (upstream)": "8",
    "downstream transportation and distribution": "9",
    "downstream transportation": "9",
    "processing of sold products": "10",
    "use of sold products": "11",
    "end-of-life treatment of sold products": "12",
    "end of life treatment": "12",
    "downstream leased assets": "13",
    "leased assets (downstream)": "13",
    "franchises": "14",
    "investments": "15",
    "transportation": "4,9",
}
# the scope-3 submetrics ITR ranks, in order; every other one (the categories but 3 and 11 included: ITR
# lists its other categories by name, after mapping them to numbers) is "unrecognized", and those are
# averaged together per year
ITR_S3_RANK = ("", "all", "combined", "total", "3", "11")
# sectors whose benchmark stands for one category, which ITR takes first (``prioritize_submetric``)
ITR_S3_SECTOR_FIRST = {
    "Electricity Utilities": "3",
    **dict.fromkeys(("Autos", "Energy", "Oil & Gas", "Coal", "Oil", "Gas", "Gas Utilities"), "11"),
}


def _itr_s3_key(submetric: object) -> str:
    """ITR's key of a scope-3 submetric: a category number for a name it knows, ``N`` for ``Cat N: ...``,
    else the lower-cased text ('' for none)."""
    if pd.isna(submetric):
        return ""
    text = str(submetric).strip()
    if text.lower() in ITR_S3_CATEGORIES:
        return ITR_S3_CATEGORIES[text.lower()]
    if m := re.match(r"^Cat (\d+):", text, flags=re.IGNORECASE):
        return m.group(1)
    return text.lower()


def itr_s3(df: pd.DataFrame, sectors: dict[str, str]) -> pd.DataFrame:
    """``df`` (emissions, after :func:`averaged`) with each company's company-level scope-3 figures replaced
    by the one per year ITR's loader picks: per submetric key the mean of its figures; per year the first
    ranked key with a figure (:data:`ITR_S3_RANK`, the sector's category first), else the mean of the
    unrecognized ones; none when the company's only submetric is unrecognized (ITR ignores a submetric it
    does not understand when nothing else competes). Written as a total in t CO2e, which the mesh reads."""
    from mesh_assets.ingest.units import UnknownUnitError, convert

    metric = df["metric"].astype(str).str.strip().str.lower()
    submetric = df["submetric"].fillna("").astype(str).str.strip().str.lower()
    s3 = (metric == "s3") & ~submetric.isin(SECTOR_SUBMETRICS) & df["value"].notna()
    s3 &= df["base_year"].astype(str).str.strip().str.lower() != "x"
    rows, replaced = [], []
    for company, group in df[s3].groupby("company_id"):
        try:
            tonnes = [
                convert(float(v), str(u), "t CO2e")
                for v, u in zip(group["value"], group["unit"], strict=True)
            ]
        except (UnknownUnitError, ValueError):
            continue
        keyed = group.assign(key=group["submetric"].map(_itr_s3_key), tonnes=tonnes)
        means = keyed.groupby(["key", "year"])["tonnes"].mean()
        first = ITR_S3_SECTOR_FIRST.get(sectors.get(str(company), ""))
        rank = ((first,) if first else ()) + tuple(k for k in ITR_S3_RANK if k != first)
        replaced.extend(group.index)
        if keyed["key"].nunique() == 1 and keyed["key"].iloc[0] not in rank:
            continue  # one submetric ITR does not know: its loader ignores the company's scope 3
        template = group.sort_values("report_date").iloc[-1]
        for year in sorted(keyed["year"].unique()):
            by_key = means.xs(year, level="year")
            ranked_keys = [k for k in rank if k in by_key.index]
            value = (
                by_key[ranked_keys[0]]
                if ranked_keys
                else by_key[[k for k in by_key.index if k not in rank]].mean()
            )
            rows.append({**template.to_dict(), "submetric": pd.NA, "boundary": pd.NA, "unit": "t CO2e",
                         "base_year": pd.NA, "year": year, "value": float(value)})  # fmt: skip
    return pd.concat([df.drop(index=replaced), pd.DataFrame(rows, columns=df.columns)], ignore_index=True)


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
        figures = ranked(figures, kind) if kind else figures
        if kind == "emissions":
            fundamentals = pd.read_csv(dest / "itr-sample" / "fundamentals.csv")
            figures = itr_s3(
                figures, dict(zip(fundamentals["company_id"], fundamentals["sector"], strict=True))
            )
        figures.to_csv(path, index=False)
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
