"""Measure one deliberate difference: where ITR's trajectory starts.

ITR 1.1.10's ``EITrajectoryProjector._extrapolate`` fills every missing year of a company's column in the
drop's year frame (here 2015..2022) at the company's trend, in order, beginning with the years before
its first report (later cut off at 2019). So a company whose reports begin in 2017 has its first
projected year compounded three times instead of once: ``I(t) = I0 (1 + g)^(t - Y0 + n)``, ``n`` the
frame's years before 2019 without a report. The trajectory then depends on how long before 2019 a
company stayed silent, which says nothing about its path; the mesh projects ``I0 (1 + g)^(t - Y0)``.

This script scores the drop as the mesh does and with ITR's start (by wrapping the domain's
trajectory projection) and prints both comparisons with the oracle's results (``deliberate.py``
combines it with the other reproduced differences):

    .venv/bin/python tools/itr_oracle/trajectory_start.py [--raw data/raw]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import compare
import oracle
import report_dates


def frame_first_year(sample: Path) -> int:
    """The first year of ITR's year frame for a drop: the earliest year its emissions or production report."""
    return int(min(pd.read_csv(sample / name)["year"].min() for name in ("emissions.csv", "production.csv")))


@contextlib.contextmanager
def itr_trajectory_start(first_year: int) -> Iterator[None]:
    """Within the block, the domain projects trajectories from ITR's start (see the module docstring)."""
    from domains.portfolio_alignment import scoring

    trend_rate, project = scoring._trend_rate, scoring._project
    reported: set[int] = set()

    def recording_trend_rate(intensity: dict[int, float], base_year: int) -> float:
        reported.clear()
        reported.update(intensity)
        return trend_rate(intensity, base_year)

    def itr_project(i0: float, base_year: int, *rest: Any) -> dict[int, float]:
        rate = rest[1]  # (milestones, rate, ...): only the trajectory (a rate) starts elsewhere
        if rate is None:
            return project(i0, base_year, *rest)
        silent = sum(1 for y in range(first_year, scoring.ITR_BASE_YEAR) if y not in reported)
        return {
            t: i0 * (1.0 + rate) ** (t - base_year + silent)
            for t in range(base_year + 1, scoring.END_YEAR + 1)
        }

    scoring._trend_rate, scoring._project = recording_trend_rate, itr_project
    try:
        yield
    finally:
        scoring._trend_rate, scoring._project = trend_rate, project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=compare.REPO / "data" / "raw")
    args = parser.parse_args(argv)
    itr = oracle.itr_results(args.raw / "itr-sample", args.raw / "itr-benchmarks", compare.subprocess_env())
    first_year = frame_first_year(args.raw / "itr-sample")
    print(f"(frame from {first_year})")
    print("| trajectory start | scope | compared | within 0.01 °C | median diff | p90 diff |")
    print("| :--- | :--- | ---: | ---: | ---: | ---: |")
    for start in ("mesh", "ITR"):
        with itr_trajectory_start(first_year) if start == "ITR" else contextlib.nullcontext():
            scores = compare.mesh_products(args.raw)["scores"]
        print("\n".join(report_dates.comparison_rows(start, scores, itr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
