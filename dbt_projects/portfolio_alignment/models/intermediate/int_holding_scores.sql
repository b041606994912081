-- Each holding with the score it takes, per benchmark and scope: its own company's score, else its
-- base company's, else the default (not data-based). `has_company` says whether any score row
-- (data-based or default) exists for the holding: holdings without one are uncovered.
with runs as (
    select distinct benchmark_id, scope from {{ ref('stg_portfolio__scores') }}
),

picked as (
    select
        r.benchmark_id,
        r.scope,
        h.company_id,
        h.investment_value_eur,
        coalesce(own.company_id, base.company_id) as scored_company_id,
        case when own.company_id is not null then own.temperature_score_c else base.temperature_score_c end
            as picked_score_c,
        case when own.company_id is not null then own.score_source else base.score_source end
            as picked_source,
        case when own.company_id is not null then own.base_year_emissions_t_co2e
            else base.base_year_emissions_t_co2e end as emissions_t_co2e,
        case when e_own.company_id is not null then e_own.market_cap_eur else e_base.market_cap_eur end
            as market_cap_eur,
        case when e_own.company_id is not null then e_own.ev_eur else e_base.ev_eur end as ev_eur,
        case when e_own.company_id is not null then e_own.evic_eur else e_base.evic_eur end as evic_eur,
        case when e_own.company_id is not null then e_own.assets_eur else e_base.assets_eur end as assets_eur,
        case when e_own.company_id is not null then e_own.revenue_eur else e_base.revenue_eur end as revenue_eur
    from {{ ref('stg_portfolio__holdings') }} as h
    cross join runs as r
    left join {{ ref('stg_portfolio__scores') }} as own
        on own.company_id = h.company_id and own.benchmark_id = r.benchmark_id and own.scope = r.scope
    left join {{ ref('stg_portfolio__scores') }} as base
        on base.company_id = h.base_company_id and base.benchmark_id = r.benchmark_id and base.scope = r.scope
    left join {{ ref('stg_companies__evic') }} as e_own on e_own.company_id = h.company_id
    left join {{ ref('stg_companies__evic') }} as e_base on e_base.company_id = h.base_company_id
)

select
    benchmark_id,
    scope,
    company_id,
    investment_value_eur,
    coalesce(picked_score_c, {{ var('default_score_c') }}) as temperature_score_c,
    (scored_company_id is not null and coalesce(picked_source, '') <> 'default') as data_based,
    (scored_company_id is not null) as has_company,
    emissions_t_co2e,
    market_cap_eur,
    ev_eur,
    evic_eur,
    assets_eur,
    revenue_eur
from picked
