"""``mesh bench scale``: a synthetic mesh of N domains x M assets, measured as it grows.

Nobody had run the mesh past its four sample domains; platform teams run dozens with hundreds of
assets each. This generates, into a temp folder, a mesh of its own (a package with one domain
package per code location, each ``definitions.py`` built with the public
``build_domain_definitions(domain, assets_module)``, ODCS contracts in ``contracts/`` and a
``workspace.yaml``) and measures, at 4x10, 25x50 and 100x100 (``--quick``: 4x10 and 10x10):

* loading each location in a fresh process (what a code server does), the slowest one, the sum,
  and the code server's memory (max RSS after the load);
* loading the whole workspace in one process (every location, as ``mesh validate`` and the
  sensor measurement below need it);
* one tick of every generated cross-domain sensor, on a temp SQLite ``DagsterInstance`` where
  every asset was materialized once (runless ``report_runless_asset_event``): with nothing new,
  and after 1 % of the products were newly published;
* ``mesh validate`` (``mesh_assets.contracts.validate.validate``) in a fresh process.

Growth is fitted by least squares against the number of assets; a per-asset cost at the largest
size above 1.5x that of the middle size is flagged as worse than linear. The generated assets are
Python assets (a chain inside each domain, fan-ins, ~10 % reading another domain's product, every
one governed by a contract) and, in one domain of ten, a dbt project of marts over two of its
products (20 % as many models as Python assets: a chain with fan-ins and tests, the load bench's
shape). The manifests are prepared at generation (``dbt parse``, a build-time cost printed apart,
as a deploy prepares them); the locations load them like any dbt domain.

Timings are wall-clock on a shared machine: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench.load_bench import dbt_parse, linear_fit, write_dbt_project  # shared with the load bench

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

FULL_SIZES = [(4, 10), (25, 50), (100, 100)]
QUICK_SIZES = [(4, 10), (10, 10)]
# Every asset a domain materializes is a product and needs a contract (``mesh validate`` reports
# an uncontracted one as an error), so the realistic proportion on this platform is all of them.
CONTRACT_SHARE = 1.0
CROSS_SHARE = 0.1  # assets that read a product of another domain
# Domains with a dbt project (one in DBT_EVERY, from the first) and its models per Python asset:
# SQL-shaped marts over the domain's own products, as in the sample (2 of its 4 domains use dbt).
DBT_EVERY = 10
DBT_MODEL_SHARE = 0.2
PUBLISH_SHARE = 0.01  # products newly published before the second sensor tick
TARGET_LOCATION_S = 3.0  # each location loads in a fresh process (at the largest size)
TARGET_WORKSPACE_S = 60.0  # every location loaded
TARGET_TICK_S = 10.0  # one tick of every sensor (one tick is 15 s)
SUPERLINEAR = 1.5  # per-asset cost at the largest size / at the middle size above this: a finding
SEED = 16
# Fresh-process loads per size: every location up to this many domains, else this many spread
# evenly (every generated location has the same size and shape, so a sample shows the spread
# without spending minutes on identical processes).
LOCATION_SAMPLE = 25


def _say(msg: str = "") -> None:
    print(msg, flush=True)


# ==== the generator ==============================================================================


def domain_name(i: int) -> str:
    return f"d{i:03d}"


def asset_name(j: int) -> str:
    return f"a{j:04d}"


def plan_mesh(n: int, m: int, seed: int = SEED) -> dict[str, Any]:
    """Who reads whom: per domain, each asset's local and cross-domain inputs, and its products.

    Inside a domain asset j reads j-1 (a chain) and, for a third of them, a random earlier asset
    (a fan-in); a share ``CROSS_SHARE`` of the assets (at least one per domain after the first)
    also reads a contracted product of a lower-numbered domain, so the mesh is a DAG.
    """
    rng = random.Random(seed)
    products = {
        domain_name(i): sorted(rng.sample(range(m), max(1, round(m * CONTRACT_SHARE)))) for i in range(n)
    }
    domains = {}
    for i in range(n):
        d = domain_name(i)
        readers = rng.sample(range(m), max(1, round(m * CROSS_SHARE))) if i else []
        assets = []
        for j in range(m):
            local = sorted({j - 1, rng.randrange(j)} if j >= 2 and rng.random() < 1 / 3 else {j - 1} - {-1})
            cross = []
            if j in readers:
                other = domain_name(rng.randrange(i))
                cross.append((other, asset_name(rng.choice(products[other]))))
            assets.append({"name": asset_name(j), "local": [asset_name(x) for x in local], "cross": cross})
        domains[d] = {"assets": assets, "products": [asset_name(j) for j in products[d]]}
    return domains


def _assets_module(domain: str, spec: dict[str, Any]) -> str:
    lines = [
        f'"""Synthetic domain {domain} (generated by bench/scale_bench.py; never run, only loaded)."""',
        "",
        "import dagster as dg",
        "",
        f"DOMAIN = {domain!r}",
        "",
    ]
    for a in spec["assets"]:
        ins = [f"{x!r}: dg.AssetIn(key_prefix=DOMAIN)" for x in a["local"]]
        ins += [f"'{d}__{x}': dg.AssetIn(key=[{d!r}, {x!r}])" for d, x in a["cross"]]
        args = [*a["local"], *(f"{d}__{x}" for d, x in a["cross"])]
        lines += [
            f"@dg.asset(key_prefix=DOMAIN, ins={{{', '.join(ins)}}})",
            f"def {a['name']}({', '.join(args)}):",
            f'    """Synthetic asset {a["name"]} of {domain}."""',
            "    return None",
            "",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _readers(plan: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """The domains that read each product: its contract lists them (access follows the contracts)."""
    readers: dict[tuple[str, str], set[str]] = {}
    for domain, spec in plan.items():
        for a in spec["assets"]:
            for other, product in a["cross"]:
                readers.setdefault((other, product), set()).add(domain)
    return {key: sorted(names) for key, names in readers.items()}


# The columns of a synthetic product (a Python asset) and of a dbt mart (write_dbt_project).
PRODUCT_COLUMNS = [
    ("id", "string", "string", True),
    ("day", "date", "date", False),
    ("value", "double", "number", False),
    ("unit", "string", "string", False),
    ("source_rows", "long", "integer", False),
]
MART_COLUMNS = [("id", "string", "string", True), ("value", "double", "number", False)]


def _contract(
    domain: str, product: str, readers: list[str], columns: list[tuple[str, str, str, bool]] = PRODUCT_COLUMNS
) -> str:
    roles = "".join(f"\n  - role: domain:{r}\n    access: read" for r in readers)
    properties = "".join(
        f"\n      - name: {name}\n        physicalType: {physical}\n        logicalType: {logical}"
        + ("\n        required: true" if required else "")
        for name, physical, logical, required in columns
    )
    return (
        textwrap.dedent(
            f"""\
            apiVersion: v3.1.0
            kind: DataContract
            id: urn:mesh:{domain}:{product}
            name: {product}
            version: 1.0.0
            status: active
            domain: {domain}
            dataProduct: {product}
            description:
              purpose: Synthetic product {product} of {domain} (scale benchmark).
            team:
              name: {domain}
              members:
                - username: {domain}-owners@mesh.example
                  role: owner
            roles:
              - role: climate-analysts
                access: read{{roles}}
            slaProperties:
              - property: latency
                value: 24
                unit: h
            schema:
              - name: {product}
                physicalName: {domain}.{product}
                physicalType: table
                logicalType: object
                quality:
                  - metric: rowCount
                    mustBeGreaterThan: 0
                properties:{{properties}}
            """
        )
        .replace("{roles}", roles)
        .replace("{properties}", properties)
    )


def generate(root: Path, n: int, m: int, seed: int = SEED) -> dict[str, Any]:
    """Write the mesh under ``root``: package ``meshgen`` (one subpackage per domain) + workspace.yaml."""
    plan = plan_mesh(n, m, seed)
    readers = _readers(plan)
    package = root / "meshgen"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A synthetic mesh (bench/scale_bench.py)."""\n')
    workspace = ["load_from:"]
    dbt_models, dbt_parse_s = 0, 0.0
    for index, (domain, spec) in enumerate(plan.items()):
        folder = package / domain
        (folder / "contracts").mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "assets.py").write_text(_assets_module(domain, spec))
        dbt_arg = ""
        if index % DBT_EVERY == 0:  # marts over two of the domain's products, manifest prepared
            models = max(2, round(m * DBT_MODEL_SHARE))
            write_dbt_project(folder / "dbt", models, {domain: spec["products"][:2]}, project=domain)
            for i in range(models):  # a mart is a product too: each has its contract
                text = _contract(domain, f"m_{i:04d}", [], MART_COLUMNS)
                (folder / "contracts" / f"m_{i:04d}.odcs.yaml").write_text(text)
            dbt_parse_s += dbt_parse(folder / "dbt")
            dbt_models += models
            dbt_arg = ', dbt_project_dir=Path(__file__).parent / "dbt"'
        (folder / "definitions.py").write_text(
            f'"""Code location of the synthetic domain {domain}."""\n\n'
            "from pathlib import Path\n\n"
            "import dagster as dg\n\n"
            f"from meshgen.{domain} import assets\n"
            "from mesh_assets.definitions import build_domain_definitions\n\n\n"
            "@dg.definitions\n"
            "def defs() -> dg.Definitions:\n"
            f"    return build_domain_definitions({domain!r}, assets{dbt_arg})\n"
        )
        for product in spec["products"]:
            text = _contract(domain, product, readers.get((domain, product), []))
            (folder / "contracts" / f"{product}.odcs.yaml").write_text(text)
        workspace += [
            "  - python_module:",
            f"      module_name: meshgen.{domain}.definitions",
            f"      location_name: {domain}",
        ]
    (root / "workspace.yaml").write_text("\n".join(workspace) + "\n")
    cross = sum(len(a["cross"]) for spec in plan.values() for a in spec["assets"])
    contracts = sum(len(spec["products"]) for spec in plan.values()) + dbt_models
    return {
        "domains": n,
        "assets_per_domain": m,
        "assets": n * m,
        "cross_edges": cross,
        "contracts": contracts,
        "dbt_models": dbt_models,
        "dbt_parse_s": round(dbt_parse_s, 1),  # build time (the manifests), not measured below
    }


# ==== the measured processes =====================================================================

# One code location loaded in a fresh process, as its code server loads it.
LOCATION_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import importlib
import dagster as dg
from mesh_assets.workspace import definitions_of
defs = definitions_of(importlib.import_module(sys.argv[1]))
repo = defs.get_repository_def()
n = len(repo.asset_graph.get_all_asset_keys())
out = {"load_s": time.perf_counter() - t0, "cpu_s": time.process_time(), "assets": n, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print("SCALEBENCH " + json.dumps(out))
"""

# mesh validate, in a fresh process like the CLI.
VALIDATE_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from mesh_assets.contracts.validate import validate
from mesh_assets.settings import get_settings
findings = validate(Path(sys.argv[1]), get_settings())
errors = [str(f) for f in findings if getattr(f, "level", "") == "error"]
levels = {}
for f in findings:
    levels[getattr(f, "level", "?")] = levels.get(getattr(f, "level", "?"), 0) + 1
out = {"validate_s": time.perf_counter() - t0, "cpu_s": time.process_time(), "findings": levels, "errors": errors[:3]}
print("SCALEBENCH " + json.dumps(out))
"""

# The whole workspace in one process, then one tick of every sensor on a temp SQLite instance.
SENSOR_CHILD = r"""
import json, random, resource, sys, tempfile, time, warnings, logging
warnings.filterwarnings("ignore")
logging.getLogger("dagster").setLevel(logging.ERROR)
from pathlib import Path
import dagster as dg
from mesh_assets.workspace import locations
workspace, share, seed = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
out = {}
t0 = time.perf_counter()
defs = {loc.name: loc.load() for loc in locations(workspace)}
repos = {name: d.get_repository_def() for name, d in defs.items()}
out["workspace_s"] = time.perf_counter() - t0
out["workspace_cpu_s"] = time.process_time()
keys = sorted({k for r in repos.values() for k in r.asset_graph.get_all_asset_keys() if r.asset_graph.get(k).is_materializable}, key=lambda k: k.path)
sensors = [(name, s) for name, r in repos.items() for s in r.sensor_defs]
out["sensors"] = len(sensors)
out["assets"] = len(keys)
# tmpfs when there is one: the seeding writes thousands of events, and on a shared disk each
# SQLite commit's fsync costs more than the platform code measured here.
shm = Path("/dev/shm")
with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as home:
    (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.local_temp(home) as instance:
        # What the sensors read: every product another domain consumes, and the assets reading
        # it (their latest materialization says whether they already saw a publication).
        consumed = set()
        for name, r in repos.items():
            local = {k for k in r.asset_graph.get_all_asset_keys() if r.asset_graph.get(k).is_materializable}
            for k in local:
                for parent in r.asset_graph.get(k).parent_keys:
                    if parent.path[0] != name:
                        consumed.update((parent, k))
        t = time.perf_counter()
        for key in sorted(consumed, key=lambda k: k.path):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        out["seed_events"] = len(consumed)
        out["seed_events_s"] = time.perf_counter() - t
        cursors = {}

        def tick():
            started, cpu = time.perf_counter(), time.process_time()
            requests = 0
            slowest = (0.0, None)
            for name, sensor in sensors:
                s0 = time.perf_counter()
                context = dg.build_sensor_context(instance=instance, cursor=cursors.get(sensor.name), repository_def=repos[name])
                result = sensor(context)
                if isinstance(result, dg.SensorResult):
                    requests += len(result.run_requests or [])
                    cursors[sensor.name] = result.cursor if result.cursor is not None else context.cursor
                else:
                    cursors[sensor.name] = context.cursor
                took = time.perf_counter() - s0
                if took > slowest[0]:
                    slowest = (took, sensor.name)
            out.setdefault("tick_cpu_s", []).append(round(time.process_time() - cpu, 3))
            return time.perf_counter() - started, requests, slowest

        out["tick_first_s"], _, _ = tick()  # cursors start here (each product's latest materialization)
        out["tick_idle_s"], out["requests_idle"], (out["slowest_idle_s"], out["slowest_idle"]) = tick()
        products = sorted({k for r in repos.values() for k in r.asset_graph.get_all_asset_keys()
                           if r.asset_graph.get(k).is_materializable and "mesh/contract" in r.asset_graph.get(k).metadata},
                          key=lambda k: k.path)
        rng = random.Random(seed)
        published = rng.sample(products, max(1, round(len(products) * share))) if products else []
        for key in published:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        out["published"] = len(published)
        out["tick_busy_s"], out["requests_busy"], (out["slowest_busy_s"], out["slowest_busy"]) = tick()
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("SCALEBENCH " + json.dumps(out))
"""


def _env(root: Path, home: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(root), str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_")) and k != "PYTHONPATH"
    }
    return {**env, "PYTHONPATH": pythonpath, "MESH_HOME": str(home), "MESH_PROFILE": "local"}


def _run(code: str, args: list[str], env: dict[str, str], timeout: int = 1800) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("SCALEBENCH ")), None)
    if done.returncode or line is None:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:500]}
    return json.loads(line.removeprefix("SCALEBENCH "))


def measure_size(n: int, m: int, workdir: Path) -> dict[str, Any]:
    """Generate the n x m mesh and take every measurement of it (one process at a time)."""
    root = workdir / f"mesh-{n}x{m}"
    home = root / "home"
    home.mkdir(parents=True)
    t0 = time.perf_counter()
    shape = generate(root, n, m)
    shape["generate_s"] = time.perf_counter() - t0
    env = _env(root, home)
    result: dict[str, Any] = {**shape, "load_before": os.getloadavg()[0]}

    loads = []
    sample = (
        range(n)
        if n <= LOCATION_SAMPLE
        else sorted({round(k * (n - 1) / (LOCATION_SAMPLE - 1)) for k in range(LOCATION_SAMPLE)})
    )
    result["locations_measured"] = len(sample)
    for i in sample:
        r = _run(LOCATION_CHILD, [f"meshgen.{domain_name(i)}.definitions"], env)
        if "error" in r:
            result["error"] = f"location {domain_name(i)}: {r['error']}"
            return result
        loads.append({"location": domain_name(i), **r})
    slowest = max(loads, key=lambda r: r["load_s"])
    result["location"] = {
        "median_s": statistics.median(r["load_s"] for r in loads),
        "max_s": slowest["load_s"],
        "slowest": slowest["location"],
        # all locations one after the other (extrapolated from the sample when sampled)
        "sum_s": sum(r["load_s"] for r in loads) * n / len(loads),
        "cpu_max_s": max(r["cpu_s"] for r in loads),
        "rss_median_mib": statistics.median(r["rss_mib"] for r in loads),
        "rss_max_mib": max(r["rss_mib"] for r in loads),
    }
    result["sensor"] = _run(SENSOR_CHILD, [str(root / "workspace.yaml"), str(PUBLISH_SHARE), str(SEED)], env)
    result["validate"] = _run(VALIDATE_CHILD, [str(root / "workspace.yaml")], env)
    result["load_after"] = os.getloadavg()[0]
    return result


# ==== fitting and the report =====================================================================


def _metric(result: dict[str, Any], path: str) -> float | None:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


METRICS = [
    ("location.max_s", "slowest location load (s)"),
    ("location.cpu_max_s", "slowest location load, CPU (s)"),
    ("location.sum_s", "all locations, one process each (s)"),
    ("location.rss_max_mib", "code server RSS, largest (MiB)"),
    ("sensor.workspace_s", "whole workspace in one process (s)"),
    ("sensor.workspace_cpu_s", "whole workspace in one process, CPU (s)"),
    ("sensor.tick_idle_s", "tick of every sensor, nothing new (s)"),
    ("sensor.tick_busy_s", "tick of every sensor, 1% published (s)"),
    ("sensor.rss_mib", "workspace + sensors process RSS (MiB)"),
    ("validate.validate_s", "mesh validate (s)"),
    ("validate.cpu_s", "mesh validate, CPU (s)"),
]


def growth(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric: the linear fit against assets, and per-asset cost at the largest vs the middle size."""
    out = {}
    for path, _ in METRICS:
        points = [(r["assets"], v) for r in results if (v := _metric(r, path)) is not None]
        fit = linear_fit(points)
        ratio = None
        if len(points) >= 3:
            (x1, y1), (x2, y2) = points[-2], points[-1]
            base = points[0][1]
            if y1 - base > 0 and x1 > points[0][0]:
                # marginal cost per asset from the middle to the largest size vs from the smallest to the middle
                ratio = ((y2 - y1) / (x2 - x1)) / ((y1 - base) / (x1 - points[0][0]))
        out[path] = {
            "fit": fit,
            "marginal_ratio": ratio,
            "superlinear": ratio is not None and ratio > SUPERLINEAR,
        }
    return out


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def report(results: list[dict[str, Any]], fits: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    sizes = [f"{r['domains']}x{r['assets_per_domain']}" for r in results]
    lines = [
        f"{'N x M (domains x assets)':<42}" + "".join(f"{s:>12}" for s in sizes) + "   fit: a + b/asset (R²)"
    ]
    lines.append(
        f"{'assets / cross-domain reads / contracts':<42}"
        + "".join(
            f"{str(r['assets']) + '/' + str(r['cross_edges']) + '/' + str(r['contracts']):>12}"
            for r in results
        )
    )
    lines.append(
        f"{'dbt models (dbt parse at build, s)':<42}"
        + "".join(
            f"{str(r.get('dbt_models', 0)) + ' (' + _f(r.get('dbt_parse_s'), 0) + ')':>12}" for r in results
        )
    )
    for path, label in METRICS:
        fit = fits[path]["fit"]
        cells = "".join(f"{_f(_metric(r, path)):>12}" for r in results)
        fitted = (
            f"   {_f(fit['intercept'])} + {fit['slope'] * 1000:.3f}ms ({_f(fit['r2'])})"
            if fit["slope"] is not None
            else ""
        )
        if "mib" in path and fit["slope"] is not None:
            fitted = f"   {_f(fit['intercept'], 0)} + {fit['slope'] * 1000:.1f} KiB/asset ({_f(fit['r2'])})"
        flag = "  WORSE THAN LINEAR" if fits[path]["superlinear"] else ""
        lines.append(f"{label:<42}{cells}{fitted}{flag}")
    lines.append(
        f"{'locations loaded in fresh processes':<42}"
        + "".join(f"{str(r.get('locations_measured', '-')) + '/' + str(r['domains']):>12}" for r in results)
    )
    lines.append(
        f"{'slowest location':<42}"
        + "".join(f"{(r.get('location') or {}).get('slowest', '-'):>12}" for r in results)
    )
    lines.append(
        f"{'run requests, idle / 1% published':<42}"
        + "".join(
            f"{str((r.get('sensor') or {}).get('requests_idle', '-')) + '/' + str((r.get('sensor') or {}).get('requests_busy', '-')):>12}"
            for r in results
        )
    )
    lines.append(
        f"{'load average before / after':<42}"
        + "".join(f"{_f(r.get('load_before'), 1) + '/' + _f(r.get('load_after'), 1):>12}" for r in results)
    )
    errors = [
        f"ERROR {s}: {e}"
        for s, r in zip(sizes, results, strict=True)
        for e in [
            r.get("error"),
            (r.get("sensor") or {}).get("error"),
            (r.get("validate") or {}).get("error"),
        ]
        if e
    ]
    top = results[-1]
    label = f"{top['domains']}x{top['assets_per_domain']}"
    targets = []
    for path, limit, what in (
        ("location.max_s", TARGET_LOCATION_S, "each location loads"),
        ("sensor.workspace_s", TARGET_WORKSPACE_S, "whole workspace loads"),
        ("sensor.tick_busy_s", TARGET_TICK_S, "a tick of every sensor"),
    ):
        value = _metric(top, path)
        ok = value is not None and value < limit
        targets.append(f"TARGET {what} < {limit:.0f} s at {label}: {_f(value)}  {'PASS' if ok else 'FAIL'}")
    superlinear = [label for path, label in METRICS if fits[path]["superlinear"]]
    targets.append(
        "TARGET growth linear in assets: "
        + ("PASS" if not superlinear else f"FAIL ({', '.join(superlinear)})")
        + ("" if len(results) >= 3 else " (needs 3 sizes; quick mode shows the fit only)")
    )
    return lines + errors, targets


def main(quick: bool = False) -> int:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    started = time.perf_counter()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mesh-scale-bench-"))
    results = []
    try:
        for n, m in sizes:
            t0 = time.perf_counter()
            results.append(measure_size(n, m, workdir))
            _say(
                f"  {n}x{m}: measured in {time.perf_counter() - t0:.0f}s (load average {os.getloadavg()[0]:.1f})"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    fits = growth(results)
    lines, targets = report(results, fits)
    mode = "quick" if quick else "full"
    header = f"mesh bench scale ({mode}): {os.cpu_count()} cores; synthetic mesh of Python assets, {CONTRACT_SHARE:.0%} with contracts, {CROSS_SHARE:.0%} reading another domain, one domain in {DBT_EVERY} with dbt marts ({DBT_MODEL_SHARE:.0%} of its assets)"
    _say("\n".join(["", header, "", *lines, "", *targets, f"(total {time.perf_counter() - started:.0f}s)"]))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"scale-{mode}-{stamp}.json"
    out.write_text(
        json.dumps(
            {"mode": mode, "results": results, "fits": fits, "report": lines, "targets": targets},
            indent=1,
            default=str,
        )
    )
    _say(f"results: {out.relative_to(REPO_ROOT)}")
    return 0


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4x10 and 10x10 only (the CI smoke test)")
    args = parser.parse_args(argv)
    return main(quick=args.quick)


if __name__ == "__main__":
    raise SystemExit(_cli())
