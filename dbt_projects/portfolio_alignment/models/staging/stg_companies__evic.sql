-- EVIC per company id (sector splits included), first row per id.
with ranked as (
    select
        company_id,
        cast(evic_eur as double) as evic_eur,
        row_number() over (partition by company_id order by report_date desc nulls last) as rn
    from {{ source('companies', 'company_master') }}
)
select company_id, evic_eur
from ranked
where rn = 1
