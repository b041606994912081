"""The mesh's temperature scores next to the ITR tool's, on the same drop: figures and a markdown report.

Used by ``tests/oracle`` (which asserts on the figures) and by ``tools/itr_oracle/sample_result.py``
(which writes the report into docs/portfolio-alignment-method.md). Runs in the project's venv: the
mesh side is the domain's own transforms, the ITR side the JSON of ``tools/itr_oracle/oracle.py``.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SCOPES = ("S1", "S1S2", "S3", "S1S2S3")
METHODS = ("WATS", "TETS", "MOTS", "EOTS", "ECOTS", "AOTS", "ROTS")
TOLERANCE_C = 0.01


@dataclass
class ScopeComparison:
    scope: str
    n_compared: int
    n_within_tolerance: int
    median_diff_c: float
    p90_diff_c: float
    max_diff_c: float
    largest: list[tuple[str, float, float]] = field(default_factory=list)  # (company_id, mesh, itr)
    n_itr_only: int = 0  # scored by ITR, default in the mesh
    n_mesh_only: int = 0  # scored by the mesh, default or absent in ITR


def mesh_products(raw: Path, benchmark_id: str = "OECM_1_5C") -> dict[str, pd.DataFrame]:
    """Every product the portfolio domain reads, computed in-process from a raw drop (as the assets do)."""
    from domains.benchmarks import transforms as benchmarks
    from domains.companies import transforms as companies
    from domains.emissions import transforms as emissions
    from domains.portfolio_alignment import transforms as portfolio

    sample, bench = raw / "itr-sample", raw / "itr-benchmarks"
    country_regions = benchmarks.country_regions(
        *(
            pd.read_csv(bench / n)
            for n in ("country_region_info.csv", "region_classification.csv", "oecd_iso.csv")
        )
    ).data
    master = companies.company_master(pd.read_csv(sample / "fundamentals.csv"), country_regions).data
    reported = emissions.reported_emissions(pd.read_csv(sample / "emissions.csv")).data
    production = emissions.production(pd.read_csv(sample / "production.csv")).data
    targets = emissions.company_targets(pd.read_csv(sample / "targets.csv")).data
    intensities = emissions.emission_intensities(pd.read_csv(sample / "emission_intensities.csv")).data
    pathways = benchmarks.intensity_pathways(
        json.loads((bench / benchmarks.BENCHMARK_FILES[benchmark_id]).read_text()), benchmark_id
    ).data
    production_pathways = benchmarks.production_pathways(
        json.loads((bench / "benchmark_production_OECM.json").read_text())
    ).data
    holdings = portfolio.portfolio_holdings(pd.read_csv(sample / "portfolio.csv")).data
    scores = portfolio.company_temperature_scores(
        master, reported, production, targets, pathways, benchmark_id,
        production_pathways=production_pathways, emission_intensities=intensities,
    ).data  # fmt: skip
    figures = portfolio.portfolio_temperature_score(holdings, scores, master).data
    return {"company_master": master, "holdings": holdings, "scores": scores, "portfolio": figures}


def compare_companies(scores: pd.DataFrame, itr: dict[str, Any], scope: str) -> ScopeComparison:
    """Company scores of one scope: mesh (uncapped, as ITR does not cap) against ITR, where both score."""
    mine = scores[(scores["scope"] == scope) & (scores["score_source"] != "default")]
    mine = mine.set_index("company_id")["temperature_score_uncapped_c"].astype(float)
    theirs = {
        c["company_id"]: c["temperature_score"]
        for c in itr["companies"]
        if c["scope"] == scope
        and c.get("score_result_type") != "DEFAULT"
        and c.get("temperature_score") is not None
    }
    common = sorted(set(mine.index) & set(theirs))
    diffs = {cid: abs(float(mine[cid]) - float(theirs[cid])) for cid in common}
    values = sorted(diffs.values())
    largest = sorted(common, key=lambda c: -diffs[c])[:5]
    return ScopeComparison(
        scope=scope,
        n_compared=len(common),
        n_within_tolerance=sum(d <= TOLERANCE_C for d in values),
        median_diff_c=statistics.median(values) if values else float("nan"),
        p90_diff_c=values[int(0.9 * (len(values) - 1))] if values else float("nan"),
        max_diff_c=values[-1] if values else float("nan"),
        largest=[(c, float(mine[c]), float(theirs[c])) for c in largest],
        n_itr_only=len(set(theirs) - set(mine.index)),
        n_mesh_only=len(set(mine.index) - set(theirs)),
    )


def portfolio_side_by_side(figures: pd.DataFrame, itr: dict[str, Any]) -> pd.DataFrame:
    """The mesh's published figures next to ITR's, per scope and method."""
    theirs = {(p["scope"], p["aggregation"]): p["temperature_score_c"] for p in itr["portfolio"]}
    rows = []
    for scope in SCOPES:
        for method in METHODS:
            mine = figures[(figures["scope"] == scope) & (figures["method"] == method)]
            rows.append(
                {
                    "scope": scope,
                    "method": method,
                    "mesh_c": float(mine["temperature_score_c"].iloc[0]) if len(mine) else float("nan"),
                    "itr_c": theirs.get((scope, method), float("nan")),
                    "mesh_coverage": float(mine["coverage_value_share"].iloc[0])
                    if len(mine)
                    else float("nan"),
                }
            )
    out = pd.DataFrame(rows)
    out["diff_c"] = (out["mesh_c"] - out["itr_c"]).abs()
    return out


def report_markdown(products: dict[str, pd.DataFrame], itr: dict[str, Any]) -> str:
    """The sample-result section of the method doc."""
    scores, figures, holdings = products["scores"], products["portfolio"], products["holdings"]
    lines = []
    s1s2 = scores[scores["scope"] == "S1S2"]
    counts = s1s2["score_result_type"].fillna("default").value_counts()
    lines.append(
        f"Entities per scope: {len(s1s2)} (company_master rows and sector splits). S1S2: "
        + ", ".join(f"{int(counts[k])} {k}" for k in sorted(counts.index))
        + f"; {_count(int(s1s2['score_capped'].fillna(False).sum()), 'score')} capped at 4.4 °C."
    )
    dropped = sum(not h["scored_by_itr"] for h in itr["holdings"])
    wats = figures[(figures["scope"] == "S1S2") & (figures["method"] == "WATS")].iloc[0]
    lines.append(
        f"Holdings: {len(holdings)}; the mesh scores or reports every one ({int(wats['n_holdings_data_based'])} "
        f"data-based, {int(wats['n_holdings_default'])} at the default, of which "
        f"{int(wats['n_holdings_no_company_data'])} without company data; S1S2 coverage "
        f"{wats['coverage_value_share']:.1%} of the value). ITR drops {dropped} of {len(itr['holdings'])} holdings."
    )
    kept = {h["company_id"] for h in itr["holdings"] if h["scored_by_itr"]}
    itr_wats = {p["scope"]: p["temperature_score_c"] for p in itr["portfolio"] if p["aggregation"] == "WATS"}
    parts = []
    for scope in SCOPES:
        mine = wats_over(products, scope, kept)
        parts.append(f"{scope} {mine:.2f} (ITR {itr_wats.get(scope, float('nan')):.2f})")
    lines.append("WATS over the holdings ITR keeps (mesh scores, capped): " + ", ".join(parts) + ".")
    quarantined = scores["default_reason"].astype("string").str.contains("quarantined", na=False).sum()
    lines.append(f"Scores quarantined as implausible (above 20 °C, all scopes): {int(quarantined)}.")
    lines += ["", "Company scores against ITR 1.1.10 (uncapped mesh score, companies both score):", ""]
    lines += [
        "| scope | compared | within 0.01 °C | median diff | p90 diff | largest diff | ITR only | mesh only |",
        "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scope in SCOPES:
        c = compare_companies(scores, itr, scope)
        lines.append(
            f"| {scope} | {c.n_compared} | {c.n_within_tolerance} | {c.median_diff_c:.3f} | {c.p90_diff_c:.3f} | "
            f"{c.max_diff_c:.3f} ({c.largest[0][0] if c.largest else '-'}) | {c.n_itr_only} | {c.n_mesh_only} |"
        )
    lines += ["", "Portfolio figures (°C), mesh as published and ITR:", ""]
    lines += ["| scope | " + " | ".join(METHODS) + " |", "| :--- |" + " ---: |" * len(METHODS)]
    side = portfolio_side_by_side(figures, itr)
    for scope in SCOPES:
        part = side[side["scope"] == scope].set_index("method")
        cells = [f"{part.at[m, 'mesh_c']:.2f} / {part.at[m, 'itr_c']:.2f}" for m in METHODS]
        lines.append(f"| {scope} (mesh / ITR) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """``1 score``, ``2 scores``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def wats_over(products: dict[str, pd.DataFrame], scope: str, company_ids: set[str]) -> float:
    """WATS of the mesh's scores over the holdings whose company id is in ``company_ids``."""
    from domains.portfolio_alignment import transforms

    scores = products["scores"]
    master = products["company_master"].drop_duplicates("company_id").set_index("company_id")
    h = transforms.holding_scores(products["holdings"], scores[scores["scope"] == scope], master)
    h = h[h["company_id"].isin(company_ids)]
    value = h["investment_value_eur"].astype(float)
    return float((value * h["temperature_score_c"]).sum() / value.sum())


def subprocess_env() -> dict[str, str]:
    """What the oracle subprocess needs from this process's environment, and nothing else."""
    keep = (
        "PATH",
        "HOME",
        "XDG_CACHE_HOME",
        "PIP_CERT",
        "PIP_FIND_LINKS",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_INDEX_URL",
    )
    keep += (
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "MESH_ITR_PYTHON",
        "MESH_ITR_VENV",
        "PYENV_ROOT",
        "PYENV_VERSION",
    )
    return {k: v for k in keep if (v := os.environ.get(k))}
