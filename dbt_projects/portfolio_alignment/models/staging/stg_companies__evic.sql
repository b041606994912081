-- Company financials in EUR per company id (sector splits included), first row per id: the
-- denominators of the ownership-weighted aggregations (MOTS market cap, EOTS EV, ECOTS EVIC,
-- AOTS total assets, ROTS revenue).
with ranked as (
    select
        company_id,
        cast(market_cap_eur as double) as market_cap_eur,
        cast(ev_eur as double) as ev_eur,
        cast(evic_eur as double) as evic_eur,
        cast(assets_eur as double) as assets_eur,
        cast(revenue_eur as double) as revenue_eur,
        row_number() over (partition by company_id order by report_date desc nulls last) as rn
    from {{ source('companies', 'company_master') }}
)
select company_id, market_cap_eur, ev_eur, evic_eur, assets_eur, revenue_eur
from ranked
where rn = 1
