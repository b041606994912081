"""A snapshot of every code location's graph: an unintended change shows up in review as a diff of
``__snapshots__/test_location_snapshots.ambr``. After an intended change, refresh it with
``.venv/bin/pytest tests/architecture/test_location_snapshots.py --snapshot-update`` and commit it."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from mesh_assets.settings import REPO_ROOT, MeshSettings
from mesh_assets.workspace import locations

LOCATIONS = locations(REPO_ROOT / "workspace.yaml")


def summary(defs: dg.Definitions) -> dict[str, Any]:
    """What a reviewer must see change: keys, checks, automation, owners and kinds (no paths, no times)."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: tuple(k.path)):
        node = graph.get(key)
        if not node.is_materializable:
            assets[key.to_user_string()] = "external (another domain's product)"
            continue
        spec = node.to_asset_spec()
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "freshness": bool(spec.freshness_policy),
            "contract": spec.tags.get("mesh/contract_version"),
        }
    checks = sorted(
        f"{c.asset_key.to_user_string()}:{c.name}{' (blocking)' if graph.get_check_spec(c).blocking else ''}"
        for c in graph.asset_check_keys
    )
    return {
        "assets": assets,
        "checks": checks,
        "sensors": sorted(f"{s.name} every {s.minimum_interval_seconds}s" for s in repo.sensor_defs),
        "schedules": sorted(f"{s.name} {s.cron_schedule}" for s in repo.schedule_defs),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "resources": sorted(repo.get_top_level_resources()),
    }


@pytest.mark.parametrize("location", LOCATIONS, ids=[loc.name for loc in LOCATIONS])
def test_code_location_graph_matches_its_snapshot(location, snapshot, monkeypatch) -> None:
    # the interval and paths come from the settings: pin them so the snapshot is the code's
    settings = MeshSettings.from_env("local", {})
    monkeypatch.setattr("mesh_assets.definitions.get_settings", lambda profile=None: settings)
    assert summary(location.load()) == snapshot
