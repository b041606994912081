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


def test_mesh_bench_load_quick_prints_every_target(tmp_path):
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/mesh"), "bench", "load", "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "MESH_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    locations = re.findall(r"^TARGET \(b\) (\w+) load .* (PASS|FAIL) ", out, flags=re.M)
    # every location of workspace.yaml: the sample's four domains, the platform's own (the catalog
    # export) and any domain added since
    from mesh_assets.workspace import locations as workspace_locations

    expected = {loc.name for loc in workspace_locations(REPO_ROOT / "workspace.yaml")}
    assert {"benchmarks", "companies", "emissions", "portfolio_alignment", "mesh_lineage"} <= expected
    assert {name for name, _ in locations} == expected, out[-3000:]
    assert re.search(r"^TARGET \(d\) growth linear", out, flags=re.M), out[-3000:]
    assert re.search(r"^ +20 +\d+\.\d +\d+\.\d\d", out, flags=re.M), "no timing of the 20-model dbt domain"
    assert "ERROR" not in out, out[-3000:]
    assert re.search(r"TARGETS: \d+/\d+ PASS", out)


@pytest.mark.parametrize("domain", ["benchmarks", "companies", "emissions", "portfolio_alignment"])
def test_code_location_loads_without_heavy_libraries(domain):
    """Loading a code location imports Dagster and the platform only: pandas & co. load in a run."""
    from bench.load_bench import measure

    result = measure({"kind": "module", "module": f"domains.{domain}.definitions"})
    assert "error" not in result, result
    assert result["heavy"] == [], f"imported when {domain} loads: {result['heavy']}"
