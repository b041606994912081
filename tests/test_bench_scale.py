"""`mesh bench scale --quick` generates a synthetic mesh, loads it, ticks its sensors and prints the table.

The speed goals live in the benchmark; this checks that the generated mesh is a valid one (every
location loads, every contract validates, every consuming domain has its sensor) and that the
report carries every measurement.
"""

import json
import re
import subprocess
import sys

import pytest

from mesh_assets.settings import REPO_ROOT

pytestmark = pytest.mark.slow


def test_generated_mesh_is_valid_and_matches_its_plan(tmp_path):
    from bench.scale_bench import generate, plan_mesh

    shape = generate(tmp_path, 3, 6)
    plan = plan_mesh(3, 6)
    # every product has its contract: the 18 Python assets and the 2 dbt marts of d000
    assert shape["assets"] == 18 and shape["dbt_models"] == 2 and shape["contracts"] == 20
    assert (tmp_path / "meshgen" / "d000" / "dbt" / "target" / "manifest.json").is_file()
    assert "dbt_project_dir" in (tmp_path / "meshgen" / "d000" / "definitions.py").read_text()
    assert (tmp_path / "workspace.yaml").read_text().count("python_module") == 3
    # the mesh is a DAG across domains: a domain reads only products of lower-numbered ones
    for i, (domain, spec) in enumerate(plan.items()):
        for asset in spec["assets"]:
            assert all(int(other[1:]) < i for other, _ in asset["cross"]), (domain, asset)
    assert shape["cross_edges"] >= 2  # every domain after the first reads another one


def test_scale_bench_quick_prints_the_table_and_every_target(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale_bench", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "ERROR" not in out, out[-3000:]
    assert re.search(r"^N x M \(domains x assets\) +4x10 +10x10", out, flags=re.M), out[-3000:]
    for label in ("slowest location load (s)", "tick of every sensor, 1% published (s)", "mesh validate (s)"):
        assert re.search(rf"^{re.escape(label)} +\d+\.\d\d +\d+\.\d\d", out, flags=re.M), (label, out[-3000:])
    assert len(re.findall(r"^TARGET .*(PASS|FAIL)", out, flags=re.M)) == 4, out[-3000:]
    saved = re.search(r"^results: (\S+)", out, flags=re.M)
    payload = json.loads((REPO_ROOT / saved.group(1)).read_text())
    for size in payload["results"]:
        assert size["sensor"]["sensors"] == size["domains"] - 1  # every domain but the first consumes
        assert size["validate"]["errors"] == [] and "error" not in size["validate"]["findings"], size[
            "validate"
        ]
        assert size["location"]["rss_max_mib"] > 0
        # the dbt marts are assets of their location
        assert size["sensor"]["assets"] == size["assets"] + size["dbt_models"] > size["assets"]
