-- One score per company, scope and benchmark.
with ranked as (
    select
        company_id,
        benchmark_id,
        scope,
        cast(temperature_score_c as double) as temperature_score_c,
        score_source,
        cast(base_year_emissions_t_co2e as double) as base_year_emissions_t_co2e,
        row_number() over (partition by company_id, scope, benchmark_id order by temperature_score_c) as rn
    from {{ source('portfolio_alignment', 'company_temperature_scores') }}
)
select company_id, benchmark_id, scope, temperature_score_c, score_source, base_year_emissions_t_co2e
from ranked
where rn = 1
