"""Catalog export benchmark: time and requests for the sample mesh and a synthetic mesh of N assets.

Runs the real exporter (SDK over HTTP) against the loopback OpenMetadata of the tests
(``tests/lineage/om_server.py``), which validates every body with the SDK's models in the same
process: the seconds include that server work on the same cores. Prints one JSON object.

    .venv/bin/python bench/lineage_bench.py [--assets 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lineage"))


def synthetic_model(n_assets: int, domains: int = 10, columns: int = 10, seed: int = 7):
    """``n_assets`` products over ``domains`` domains (one location each), two upstreams per product
    (earlier ones), every other product a dbt model with same-name column lineage."""
    from mesh_assets.lineage.model import ColumnInfo, Edge, MeshModel, Product

    rng = random.Random(seed)
    products, edges, locations = [], [], {}
    cols = tuple(
        ColumnInfo(name=f"c{i}", type="string" if i % 2 else "double", description=f"column {i}")
        for i in range(columns)
    )
    for i in range(n_assets):
        domain = f"d{i % domains}"
        key = (domain, f"p{i}")
        source = "dbt" if i % 2 else "pipeline"
        sql = f"select * from iceberg.x.p{i}" if source == "dbt" else None
        products.append(
            Product(
                key=key,
                location=domain,
                description=f"product {i}",
                owners=(f"{domain}@x.example", f"team:{domain}"),
                columns=cols,
                source=source,
                sql=sql,
                contract_path=f"contracts/p{i}.odcs.yaml",
                contract_version="1.0.0",
                contract_status="active",
            )
        )
        locations.setdefault(domain, []).append(key)
        for j in sorted(rng.sample(range(i), min(2, i))):
            up = products[j].key
            lineage = tuple((c.name, (c.name,)) for c in cols) if source == "dbt" else ()
            edges.append(
                Edge(upstream=up, downstream=key, pipeline=domain, source=source, sql=sql, columns=lineage)
            )
    return MeshModel(
        products=tuple(products), edges=tuple(edges), locations={k: tuple(v) for k, v in locations.items()}
    )


def measure(settings, model, state: Path, token: str) -> dict:
    from om_server import LoopbackOpenMetadata

    from mesh_assets.lineage.export import export_mesh

    out = {}
    with LoopbackOpenMetadata(token=token) as server:
        for label in ("first", "second_unchanged"):
            seen = len(server.store.log)
            started = time.perf_counter()
            report = export_mesh(settings, url=server.url, token=token, model=model, state_path=state)
            seconds = time.perf_counter() - started
            log = server.store.log[seen:]
            out[label] = {
                "seconds": round(seconds, 2),
                "requests": len(log),
                "writes": sum(1 for r in log if r["method"] != "GET"),
                "reads": sum(1 for r in log if r["method"] == "GET"),
                "sent_by_kind": report.by_kind,
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=1000)
    args = parser.parse_args()
    from conftest import TOKEN  # the loopback server's token

    from mesh_assets.lineage.model import build_model
    from mesh_assets.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    import metadata.ingestion.ometa.ometa_api  # noqa: F401

    sdk_import = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sample = build_model(settings, with_instance=False)
        model_seconds = time.perf_counter() - started
        result = {
            "sdk_import_seconds": round(sdk_import, 1),
            "sample": {
                "assets": len(sample.products),
                "edges": len(sample.edges),
                "column_edges": sum(len(e.columns) for e in sample.edges),
                "model_seconds": round(model_seconds, 2),
                **measure(settings, sample, Path(tmp) / "sample.json", TOKEN),
            },
        }
        synthetic = synthetic_model(args.assets)
        result["synthetic"] = {
            "assets": len(synthetic.products),
            "edges": len(synthetic.edges),
            **measure(settings, synthetic, Path(tmp) / "synthetic.json", TOKEN),
        }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
