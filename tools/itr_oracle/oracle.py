"""The ITR tool's results on a drop, from the project's venv: build/run the oracle venv, cache the JSON.

The oracle (``deploy/local/itr_oracle.sh`` + ``run_itr.py``) takes minutes on two cores, so its output
is cached per user next to its venv, under a key made of everything that determines it: the four CSVs
ITR's loader reads, the benchmark files, the runner and the script's pins. Same inputs, same JSON;
any change re-runs the tool. Standard library only (imported by tests and by the doc generator).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local" / "itr_oracle.sh"
RUNNER = REPO / "tools" / "itr_oracle" / "run_itr.py"
INPUTS = ("fundamentals.csv", "esg_data.csv", "targets.csv", "portfolio.csv")
BENCHMARK_FILE = "benchmark_EI_OECM_S3.json"
PRODUCTION_FILE = "benchmark_production_OECM.json"


class OracleUnavailableError(RuntimeError):
    """The oracle venv could not be built or the tool failed; the message says why."""


def cache_dir(env: dict[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "mesh" / "itr-1.1.10-results"


def cache_key(sample_dir: Path, benchmarks_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in (
        *(sample_dir / n for n in INPUTS),
        benchmarks_dir / BENCHMARK_FILE,
        benchmarks_dir / PRODUCTION_FILE,
        RUNNER,
        SCRIPT,
    ):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def itr_results(sample_dir: Path, benchmarks_dir: Path, env: dict[str, str], timeout: float = 3600) -> dict:
    """ITR 1.1.10's company scores and portfolio figures for the drop (cached; built on first use).

    ``env`` is the subprocess environment (PATH, HOME / XDG_CACHE_HOME and pip settings).
    """
    cached = cache_dir(env) / f"{cache_key(sample_dir, benchmarks_dir)}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "itr.json"
        cmd = [
            str(SCRIPT), "run", "--raw", str(sample_dir), "--benchmarks", str(benchmarks_dir), "--out", str(out),
            "--benchmark-file", BENCHMARK_FILE, "--production-file", PRODUCTION_FILE,
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-20:])
            raise OracleUnavailableError(f"{SCRIPT.name} run failed (exit {proc.returncode}):\n{tail}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), cached)
    return json.loads(cached.read_text())
