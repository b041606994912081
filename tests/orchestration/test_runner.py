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


def test_a_legacy_dags_assets_and_what_reads_them_wait_for_the_dags_first_publication() -> None:
    """The runner does not launch what an Airflow DAG runs, nor a product reading it before the DAG
    has published once (it would fail on a file that is not there yet); once published, it runs."""
    from dataclasses import replace

    from mesh_assets.orchestration.runner import waiting

    vendor = replace(node("companies/vendor", "companies_airflow"), airflow_dag="vendor_dag")
    nodes = [
        vendor,
        node("companies/market", "companies", ("companies/vendor",)),
        node("companies/report", "companies", ("companies/market",)),
        node("companies/master", "companies", ("benchmarks/regions",)),
        node("benchmarks/regions", "benchmarks"),
        node("emissions/scores", "emissions", ("emissions/external_feed",)),
    ]
    left_out = waiting(nodes)
    assert left_out == {
        ("companies", "vendor"): "runs in the Airflow DAG vendor_dag",
        ("companies", "market"): "waits for the first publication of companies/vendor",
        ("companies", "report"): "waits for the first publication of companies/market",
        # an upstream no location materializes (observed only) that was never published
        ("emissions", "scores"): "waits for the first publication of emissions/external_feed",
    }
    # the DAG has published once: its readers run; its own asset is still the DAG's to run
    published = [replace(vendor, published=True), *nodes[1:]]
    assert set(waiting(published, {("emissions", "external_feed"): True})) == {("companies", "vendor")}
