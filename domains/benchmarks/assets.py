"""Benchmarks domain: sector intensity pathways (OECM, TPI) and the country-to-region mapping.

The pathways are one table partitioned by benchmark scenario, so adding a scenario is a new
partition, and a consumer can read one scenario or all of them.
"""

import dagster as dg
import pandas as pd

from domains.benchmarks import transforms
from mesh_assets.cleaning import Cleaned, cleaned_output
from mesh_assets.raw import RawInputs

DOMAIN = "benchmarks"
RAW = "itr-benchmarks"

scenarios = dg.StaticPartitionsDefinition(list(transforms.BENCHMARK_FILES))


@dg.asset(key_prefix=DOMAIN)
def country_regions(raw: RawInputs) -> dg.Output[pd.DataFrame]:
    """Countries with ISO-2/ISO-3 codes and the benchmark region each belongs to."""
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
def intensity_pathways(context: dg.AssetExecutionContext, raw: RawInputs) -> dg.Output[pd.DataFrame]:
    """Emission-intensity pathways by sector, region, scope and year, one partition per scenario."""
    files = [f"{RAW}/{transforms.BENCHMARK_FILES[k]}" for k in context.partition_keys]
    parts = [
        transforms.intensity_pathways(raw.read_json(f), k)
        for f, k in zip(files, context.partition_keys, strict=True)
    ]
    merged = Cleaned(pd.concat([p.data for p in parts], ignore_index=True))
    for part in parts:
        merged.rejected.update(part.rejected)
    return cleaned_output(merged, **raw.provenance(*files))


@dg.asset(key_prefix=DOMAIN)
def production_pathways(raw: RawInputs) -> dg.Output[pd.DataFrame]:
    """OECM production pathways by sector and region."""
    path = f"{RAW}/benchmark_production_OECM.json"
    return cleaned_output(transforms.production_pathways(raw.read_json(path)), **raw.provenance(path))
