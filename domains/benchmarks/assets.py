"""Benchmarks domain: sector intensity pathways (OECM, TPI) and the country-to-region mapping.

The pathways are one table partitioned by benchmark scenario, so adding a scenario is a new
partition, and a consumer can read one scenario or all of them.

This module is imported when the code location loads, so it imports only Dagster and the platform:
the transforms (pandas, pint) are imported inside each asset, when it runs. For the same reason
the assets return an untyped ``dg.Output`` (of a DataFrame): Dagster reads annotations at load.
"""

import dagster as dg

from domains.benchmarks.scenarios import BENCHMARK_FILES
from mesh_assets.ingest.cleaning import Cleaned, cleaned_output
from mesh_assets.ingest.raw import RawInputs

DOMAIN = "benchmarks"
RAW = "itr-benchmarks"

scenarios = dg.StaticPartitionsDefinition(list(BENCHMARK_FILES))


@dg.asset(key_prefix=DOMAIN)
def country_regions(raw: RawInputs) -> dg.Output:
    """Countries with ISO-2/ISO-3 codes and the benchmark region each belongs to."""
    from domains.benchmarks import transforms

    files = [f"{RAW}/country_region_info.csv", f"{RAW}/region_classification.csv", f"{RAW}/oecd_iso.csv"]
    required = [["alpha_2", "alpha_3", "name", "region_ar6_10"], ["ISO", "name"], ["alpha_2", "alpha_3"]]
    cleaned = transforms.country_regions(
        *(raw.read_csv(f, required_columns=r) for f, r in zip(files, required, strict=True))
    )
    return cleaned_output(cleaned, **raw.provenance(*files))


@dg.asset(
    key_prefix=DOMAIN,
    partitions_def=scenarios,
    metadata={"partition_expr": "benchmark_id"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def intensity_pathways(context: dg.AssetExecutionContext, raw: RawInputs) -> dg.Output:
    """Emission-intensity pathways by sector, region, scope and year, one partition per scenario."""
    import pandas as pd

    from domains.benchmarks import transforms

    files = [f"{RAW}/{BENCHMARK_FILES[k]}" for k in context.partition_keys]
    parts = [
        transforms.intensity_pathways(raw.read_json(f), k)
        for f, k in zip(files, context.partition_keys, strict=True)
    ]
    merged = Cleaned(pd.concat([p.data for p in parts], ignore_index=True))
    for part in parts:
        merged.rejected.update(part.rejected)
    return cleaned_output(merged, **raw.provenance(*files))


@dg.asset(key_prefix=DOMAIN)
def production_pathways(raw: RawInputs) -> dg.Output:
    """OECM production pathways by sector and region."""
    from domains.benchmarks import transforms

    path = f"{RAW}/benchmark_production_OECM.json"
    return cleaned_output(transforms.production_pathways(raw.read_json(path)), **raw.provenance(path))
