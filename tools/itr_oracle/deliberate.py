"""Attribute the remaining gap: each measured deliberate difference reproduced alone, then all together.

The method doc lists where the mesh deliberately does not follow ITR 1.1.10. Each difference that can
be reproduced is reproduced here, outside the product (the domain's code is only wrapped for the run):

* ``trajectory start``: ITR's first projected year compounded once more per silent year of the frame
  before 2019 (``trajectory_start.py``).
* ``means of several figures``: the mean of every figure given for one company, metric, submetric and
  year (by several reports, or for several boundaries), ITR's ranking of submetrics before report
  dates and its choice of scope-3 figure, fed to the mesh as a rewritten drop (``report_dates.py``).
* ``S1-only targets``: for an entity that reports S1 but no S2 or S1S2, ITR's S1S2 (and S1S2S3) target
  path is its trajectory, because ``project_ei_targets`` takes the projected intensities of a scope
  without historic intensities; its S1 targets never reach S1S2. Reproduced by scoring such a target
  as the trajectory.

With all of them reproduced, what still differs from ITR is the part of the gap no listed difference
explains (asserted by ``tests/oracle``). Prints one markdown row per scope and variant:

    .venv/bin/python tools/itr_oracle/deliberate.py [--raw data/raw]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import compare
import oracle
import report_dates
import trajectory_start

# emissions_basis of the base year when the entity reports S1 but neither S2 nor S1S2
S1_ONLY_BASES = frozenset({"S1 only (no S2 reported)", "S1+S3 (no S2 reported)"})


@contextlib.contextmanager
def itr_s1_only_targets() -> Iterator[None]:
    """Within the block, an S1-only entity's target score is its trajectory score, as in ITR."""
    from domains.portfolio_alignment import scoring

    compute = scoring._compute_score

    def itr_compute(ctx: Any, entity: dict[str, Any], scope: str) -> tuple[dict[str, Any], Any]:
        row, target = compute(ctx, entity, scope)
        scored = row.get("score_source") != "default" and not pd.isna(row.get("target_score_c"))
        if scored and row.get("emissions_basis") in S1_ONLY_BASES:
            trend = float(row["trajectory_score_c"])
            row = {
                **row,
                "target_score_c": trend,
                "temperature_score_uncapped_c": trend,
                "temperature_score_c": min(trend, scoring.MAX_SCORE_C),
            }
        return row, target

    scoring._compute_score = itr_compute
    try:
        yield
    finally:
        scoring._compute_score = compute


DIFFERENCES = ("trajectory start", "means of several figures", "S1-only targets")


def scores_with(raw: Path, differences: tuple[str, ...], workdir: Path) -> pd.DataFrame:
    """company_temperature_scores of the drop ``raw`` with the named ITR behaviours reproduced."""
    unknown = set(differences) - set(DIFFERENCES)
    if unknown:
        raise ValueError(f"unknown differences {sorted(unknown)}; known: {', '.join(DIFFERENCES)}")
    contexts: list[Callable[[], contextlib.AbstractContextManager[None]]] = []
    if "trajectory start" in differences:
        frame = trajectory_start.frame_years(raw / "itr-sample")
        contexts.append(lambda: trajectory_start.itr_trajectory_start(frame))
    if "S1-only targets" in differences:
        contexts.append(itr_s1_only_targets)
    if "means of several figures" in differences:
        raw = report_dates.averaged_drop(raw, workdir / "averaged")
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context())
        return compare.mesh_products(raw)["scores"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=compare.REPO / "data" / "raw")
    args = parser.parse_args(argv)
    itr = oracle.itr_results(args.raw / "itr-sample", args.raw / "itr-benchmarks", compare.subprocess_env())
    variants = {
        "the mesh": (),
        **{f"{d} (ITR's)": (d,) for d in DIFFERENCES},
        "all of them (ITR's)": DIFFERENCES,
    }
    print("| reproduced | scope | compared | within 0.01 °C | median diff | p90 diff |")
    print("| :--- | :--- | ---: | ---: | ---: | ---: |")
    for label, differences in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            scores = scores_with(args.raw, differences, Path(tmp))
        print("\n".join(report_dates.comparison_rows(label, scores, itr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
