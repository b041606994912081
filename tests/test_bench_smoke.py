"""`mesh bench io --quick` runs end to end and prints its ratios (speed goals live in the benchmark)."""

import os
import re
import subprocess

import pytest

from mesh_assets.settings import REPO_ROOT

pytestmark = pytest.mark.slow


def test_mesh_bench_io_quick_prints_every_target(tmp_path):
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/mesh"), "bench", "io", "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "MESH_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    targets = re.findall(r"^TARGET \((a|b|c)\).*(PASS|FAIL)", out, flags=re.M)
    assert {t[0] for t in targets} == {"a", "b", "c"}, out[-3000:]
    assert re.search(r"TARGETS: \d+/\d+ PASS", out)
