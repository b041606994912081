"""The runner's plan: a run starts only after every run holding something it reads has ended."""

from mesh_assets.orchestration.runner import AssetNode, run_groups


def node(path: str, location: str, deps: tuple[str, ...] = (), partitions: tuple[str, ...] = ()) -> AssetNode:
    return AssetNode(
        tuple(path.split("/")),
        location,
        "__repository__",
        tuple(tuple(d.split("/")) for d in deps),
        partitions,
        None,
    )


def paths(layers) -> list[list[list[str]]]:
    return [[["/".join(n.path) for n in group] for group in layer] for layer in layers]


def test_a_partitioned_run_waits_for_the_run_that_publishes_what_it_reads() -> None:
    """A partitioned dbt model reading its own location's product must not race that product's
    publication (an audit-branch write is on main only once its contract check passed)."""
    nodes = [
        node("emissions/reported", "emissions"),
        node("emissions/mart", "emissions", ("emissions/reported",)),
        node("emissions/yearly", "emissions", ("emissions/reported",), ("2015", "2016")),
    ]
    assert paths(run_groups(nodes)) == [[["emissions/reported", "emissions/mart"]], [["emissions/yearly"]]]


def test_independent_runs_share_a_layer_and_locations_follow_their_upstream() -> None:
    nodes = [
        node("benchmarks/regions", "benchmarks"),
        node("benchmarks/pathways", "benchmarks", (), ("a", "b")),
        node("companies/master", "companies", ("benchmarks/regions",)),
        node("portfolio/scores", "portfolio", ("companies/master", "benchmarks/pathways")),
    ]
    assert paths(run_groups(nodes)) == [
        [["benchmarks/regions"], ["benchmarks/pathways"]],
        [["companies/master"]],
        [["portfolio/scores"]],
    ]
