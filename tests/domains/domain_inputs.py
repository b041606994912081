"""Paths and readers for the raw OS-Climate ITR inputs used by the domain tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

RAW = Path(__file__).resolve().parents[2] / "data" / "raw"
SAMPLE = RAW / "itr-sample"
BENCH = RAW / "itr-benchmarks"
BENCHMARK_ID = "OECM_1_5C"


def read_sample(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE / name)


def read_bench_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(BENCH / name)


def read_bench_json(name: str) -> dict[str, Any]:
    return json.loads((BENCH / name).read_text())
