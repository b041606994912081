"""Emissions domain: reported emissions, production, intensities and climate targets in canonical units.

This module is imported when the code location loads, so it imports only Dagster and the platform:
the transforms (pandas, pint) are imported inside each asset, when it runs. For the same reason
the assets return an untyped ``dg.Output`` (of a DataFrame): Dagster reads annotations at load.
"""

import dagster as dg

from mesh_assets.ingest.cleaning import cleaned_output
from mesh_assets.ingest.raw import RawInputs

DOMAIN = "emissions"

# The shape of the ITR long-format drops (emissions, production, intensities): a drop missing a
# column, with no rows, or with text among the numbers is refused before anything is written.
LONG_FORMAT = {
    "required_columns": ["company_id", "report_date", "metric", "submetric", "boundary", "unit", "base_year"],
    "numeric_columns": ["year", "value", "source_row"],
}
TARGETS = {
    "required_columns": ["company_id", "target_type", "target_scope", "target_base_year_unit"],
    "numeric_columns": [
        "netzero_year",
        "target_start_year",
        "target_base_year",
        "target_base_year_qty",
        "target_year",
        "target_reduction_ambition",
    ],
}


@dg.asset(key_prefix=DOMAIN)
def reported_emissions(raw: RawInputs) -> dg.Output:
    """Company emissions by scope and year in t CO2e, one figure per company, scope and year."""
    from domains.emissions import transforms

    path = "itr-sample/emissions.csv"
    return cleaned_output(
        transforms.reported_emissions(raw.read_csv(path, **LONG_FORMAT)), **raw.provenance(path)
    )


@dg.asset(key_prefix=DOMAIN)
def production(raw: RawInputs) -> dg.Output:
    """Company production by year in a canonical unit per kind of output."""
    from domains.emissions import transforms

    path = "itr-sample/production.csv"
    return cleaned_output(transforms.production(raw.read_csv(path, **LONG_FORMAT)), **raw.provenance(path))


@dg.asset(key_prefix=DOMAIN)
def emission_intensities(raw: RawInputs) -> dg.Output:
    """Reported emission intensities in canonical units."""
    from domains.emissions import transforms

    path = "itr-sample/emission_intensities.csv"
    return cleaned_output(
        transforms.emission_intensities(raw.read_csv(path, **LONG_FORMAT)), **raw.provenance(path)
    )


@dg.asset(key_prefix=DOMAIN)
def company_targets(raw: RawInputs) -> dg.Output:
    """Company climate targets with canonical scopes, units and reduction fractions."""
    from domains.emissions import transforms

    path = "itr-sample/targets.csv"
    return cleaned_output(transforms.company_targets(raw.read_csv(path, **TARGETS)), **raw.provenance(path))
