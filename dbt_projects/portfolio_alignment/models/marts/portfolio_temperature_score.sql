-- The portfolio's temperature score per benchmark, scope and aggregation method, with its coverage.
-- Methods (ITR 1.1.10's seven, plus WATS over data-based holdings): WATS value-weighted; TETS
-- weighted by the companies' emissions; MOTS/EOTS/ECOTS/AOTS/ROTS weighted by owned emissions
-- (value / market cap, EV, EVIC, total assets or revenue x emissions). Method:
-- docs/portfolio-alignment-method.md.
with h as (
    select
        *,
        (data_based and emissions_t_co2e is not null) as emissions_known
    from {{ ref('int_holding_scores') }}
),

weights as (
    select benchmark_id, scope, 'WATS' as method, investment_value_eur as w, temperature_score_c,
        investment_value_eur from h
    union all
    select benchmark_id, scope, 'WATS_data_only', investment_value_eur, temperature_score_c,
        investment_value_eur from h where data_based
    union all
    select benchmark_id, scope, 'TETS', emissions_t_co2e, temperature_score_c,
        investment_value_eur from h where emissions_known
    union all
    select benchmark_id, scope, 'MOTS', investment_value_eur / market_cap_eur * emissions_t_co2e,
        temperature_score_c, investment_value_eur from h where emissions_known and market_cap_eur > 0
    union all
    select benchmark_id, scope, 'EOTS', investment_value_eur / ev_eur * emissions_t_co2e,
        temperature_score_c, investment_value_eur from h where emissions_known and ev_eur > 0
    union all
    select benchmark_id, scope, 'ECOTS', investment_value_eur / evic_eur * emissions_t_co2e,
        temperature_score_c, investment_value_eur from h where emissions_known and evic_eur > 0
    union all
    select benchmark_id, scope, 'AOTS', investment_value_eur / assets_eur * emissions_t_co2e,
        temperature_score_c, investment_value_eur from h where emissions_known and assets_eur > 0
    union all
    select benchmark_id, scope, 'ROTS', investment_value_eur / revenue_eur * emissions_t_co2e,
        temperature_score_c, investment_value_eur from h where emissions_known and revenue_eur > 0
),

methods as (
    select
        benchmark_id,
        scope,
        method,
        sum(w * temperature_score_c) / nullif(sum(w), 0) as temperature_score_c,
        coalesce(sum(investment_value_eur), 0) as method_value_eur
    from weights
    group by benchmark_id, scope, method
),

totals as (
    select
        benchmark_id,
        scope,
        count(*) as n_holdings,
        sum(case when data_based then 1 else 0 end) as n_holdings_data_based,
        sum(case when data_based then 0 else 1 end) as n_holdings_default,
        sum(case when has_company then 0 else 1 end) as n_holdings_no_company_data,
        sum(investment_value_eur) as total_value_eur,
        coalesce(sum(case when data_based then investment_value_eur end), 0) as data_based_value_eur
    from h
    group by benchmark_id, scope
)

select
    m.benchmark_id,
    m.scope,
    m.method,
    cast(m.temperature_score_c as double) as temperature_score_c,
    cast(t.n_holdings as bigint) as n_holdings,
    cast(t.n_holdings_data_based as bigint) as n_holdings_data_based,
    cast(t.n_holdings_default as bigint) as n_holdings_default,
    cast(t.total_value_eur as double) as total_value_eur,
    cast(t.data_based_value_eur as double) as data_based_value_eur,
    cast(t.data_based_value_eur / nullif(t.total_value_eur, 0) as double) as coverage_value_share,
    cast(m.method_value_eur as double) as method_value_eur,
    cast(m.method_value_eur / nullif(t.total_value_eur, 0) as double) as method_value_share,
    cast(t.n_holdings_no_company_data as bigint) as n_holdings_no_company_data
from methods as m
inner join totals as t on t.benchmark_id = m.benchmark_id and t.scope = m.scope
where m.temperature_score_c is not null
