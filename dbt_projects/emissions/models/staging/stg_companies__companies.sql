-- One row per company (whole companies only, not sector splits) with its sector and region.
with ranked as (
    select
        company_id,
        company_name,
        sector,
        region,
        row_number() over (partition by company_id order by report_date desc nulls last) as rn
    from {{ source('companies', 'company_master') }}
    where segment is null
)
select company_id, company_name, sector, region
from ranked
where rn = 1
