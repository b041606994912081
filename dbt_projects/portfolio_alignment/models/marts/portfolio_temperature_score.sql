-- The portfolio's temperature score per benchmark, scope and weighting method (WATS, WATS over
-- data-based holdings, ECOTS), with its coverage. Method: docs/portfolio-alignment-method.md.
with h as (
    select
        *,
        (data_based and evic_eur > 0 and emissions_t_co2e is not null) as ecots_eligible
    from {{ ref('int_holding_scores') }}
),

totals as (
    select
        benchmark_id,
        scope,
        count(*) as n_holdings,
        sum(case when data_based then 1 else 0 end) as n_holdings_data_based,
        sum(case when data_based then 0 else 1 end) as n_holdings_default,
        sum(investment_value_eur) as total_value_eur,
        coalesce(sum(case when data_based then investment_value_eur end), 0) as data_based_value_eur,
        sum(investment_value_eur * temperature_score_c) as wats_num,
        sum(case when data_based then investment_value_eur * temperature_score_c end) as wats_db_num,
        sum(case when ecots_eligible then investment_value_eur / evic_eur * emissions_t_co2e end) as ecots_den,
        sum(case when ecots_eligible
            then investment_value_eur / evic_eur * emissions_t_co2e * temperature_score_c end) as ecots_num,
        coalesce(sum(case when ecots_eligible then investment_value_eur end), 0) as ecots_value_eur
    from h
    group by benchmark_id, scope
),

methods as (
    select benchmark_id, scope, 'WATS' as method,
        wats_num / nullif(total_value_eur, 0) as temperature_score_c,
        total_value_eur as method_value_eur
    from totals
    union all
    select benchmark_id, scope, 'WATS_data_only' as method,
        wats_db_num / nullif(data_based_value_eur, 0) as temperature_score_c,
        data_based_value_eur as method_value_eur
    from totals
    union all
    select benchmark_id, scope, 'ECOTS' as method,
        ecots_num / nullif(ecots_den, 0) as temperature_score_c,
        ecots_value_eur as method_value_eur
    from totals
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
    cast(m.method_value_eur / nullif(t.total_value_eur, 0) as double) as method_value_share
from methods as m
inner join totals as t on t.benchmark_id = m.benchmark_id and t.scope = m.scope
