"""Portfolio alignment: temperature scores per company and for the portfolio.

The downstream data product of the mesh: it consumes the company master, emissions, targets and
benchmark pathways of three other domains by asset key, across code locations.
See docs/portfolio-alignment-method.md for the method.

Imported when the code location loads: only Dagster and the platform here; pandas and the
scoring code are imported inside each asset, when it runs.
"""

import dagster as dg

from mesh_assets.ingest.cleaning import cleaned_output
from mesh_assets.ingest.raw import RawInputs

DOMAIN = "portfolio_alignment"


class ScoringConfig(dg.Config):
    """Which benchmark scenario the scores are measured against."""

    benchmark_id: str = "OECM_1_5C"


@dg.asset(key_prefix=DOMAIN)
def portfolio_holdings(raw: RawInputs) -> dg.Output:
    """The portfolio's positions in EUR, with sector-split ids parsed."""
    from domains.portfolio_alignment import transforms  # pandas: at run time, not at load

    path = "itr-sample/portfolio.csv"
    return cleaned_output(
        transforms.portfolio_holdings(
            raw.read_csv(path, required_columns=["company_id"], numeric_columns=["investment_value [EUR]"])
        ),
        **raw.provenance(path),
    )


@dg.asset(
    key_prefix=DOMAIN,
    ins={
        "company_master": dg.AssetIn(key=["companies", "company_master"]),
        "reported_emissions": dg.AssetIn(key=["emissions", "reported_emissions"]),
        "production": dg.AssetIn(key=["emissions", "production"]),
        "company_targets": dg.AssetIn(key=["emissions", "company_targets"]),
        "intensity_pathways": dg.AssetIn(key=["benchmarks", "intensity_pathways"]),
        "production_pathways": dg.AssetIn(key=["benchmarks", "production_pathways"]),
        "emission_intensities": dg.AssetIn(key=["emissions", "emission_intensities"]),
        "portfolio_holdings": dg.AssetIn(key=[DOMAIN, "portfolio_holdings"]),
    },
)
def company_temperature_scores(
    config: ScoringConfig,
    company_master,
    reported_emissions,
    production,
    company_targets,
    intensity_pathways,
    production_pathways,
    emission_intensities,
    portfolio_holdings,
) -> dg.Output:
    """Per-company temperature alignment score against the sector benchmark budget.

    Inputs are DataFrames (the IO manager's default); they carry no annotation so that loading
    the code location does not import pandas.
    """
    from domains.portfolio_alignment import report, transforms

    cleaned = transforms.company_temperature_scores(
        company_master,
        reported_emissions,
        production,
        company_targets,
        intensity_pathways,
        config.benchmark_id,
        production_pathways=production_pathways,
        emission_intensities=emission_intensities,
    )
    # What people look at: the hottest and coolest companies and the spread of scores (S1S2, the
    # scope most portfolios are reported on), and which holdings drive each portfolio figure.
    s1s2 = cleaned.data[cleaned.data["scope"] == "S1S2"]
    contributors = report.top_contributors_markdown(portfolio_holdings, cleaned.data, company_master)
    return cleaned_output(
        cleaned,
        benchmark_id=config.benchmark_id,
        **report.score_report_metadata(s1s2),
        **{
            "mesh/portfolio_top_contributors": dg.MetadataValue.md(contributors),
            # scores above 4.4 C (SSP5-8.5) are capped and flagged: counted here so none goes unseen
            "mesh/scores_capped": dg.MetadataValue.int(int(cleaned.data["score_capped"].fillna(False).sum())),
        },
    )


# portfolio_temperature_score, the portfolio's score per weighting method, is a dbt model:
# dbt_projects/portfolio_alignment/models/marts/portfolio_temperature_score.sql.
