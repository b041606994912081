"""Measure one deliberate difference: where ITR's trajectory starts.

ITR 1.1.10's ``EITrajectoryProjector._extrapolate`` fills every year of a company's column in the drop's
year frame (here 2015..2022) that has no figure at the company's trend, in order: the k-th such year is
k steps of the trend from the last figure. So when a company's last figure comes before the frame's
last year, the years after it only come after every silent year before it: a company reporting
2017..2021 in a 2015..2022 frame has 2022 three steps from 2021 instead of one, and every projected
year with it, ``I(t) = I0 (1 + g)^(t - Y0 + n)``, ``n`` the frame's years before ``Y0`` without a figure.
(A company reporting the frame's last year is projected from it without extra steps.) The trajectory
then depends on how long a company stayed silent and on when other companies' reports end, neither of
which says anything about its path; the mesh projects ``I0 (1 + g)^(t - Y0)``.

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


def frame_years(sample: Path) -> range:
    """ITR's year frame for a drop: every year from the earliest its emissions or production report to
    the latest."""
    years = [pd.read_csv(sample / name)["year"] for name in ("emissions.csv", "production.csv")]
    return range(int(min(y.min() for y in years)), int(max(y.max() for y in years)) + 1)


@contextlib.contextmanager
def itr_trajectory_start(frame: range) -> Iterator[None]:
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
        # ITR fills the frame's years without a figure in order, the k-th one k steps of the trend from
        # the last figure: the years after the base year come after every silent year before it. A
        # company reporting the frame's last year has none after it, and its projection starts there.
        silent = (
            sum(1 for y in range(frame.start, base_year) if y not in reported) if base_year < frame[-1] else 0
        )
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
    frame = frame_years(args.raw / "itr-sample")
    print(f"(frame {frame.start}..{frame[-1]})")
    print("| trajectory start | scope | compared | within 0.01 °C | median diff | p90 diff |")
    print("| :--- | :--- | ---: | ---: | ---: | ---: |")
    for start in ("mesh", "ITR"):
        with itr_trajectory_start(frame) if start == "ITR" else contextlib.nullcontext():
            scores = compare.mesh_products(args.raw)["scores"]
        print("\n".join(report_dates.comparison_rows(start, scores, itr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
