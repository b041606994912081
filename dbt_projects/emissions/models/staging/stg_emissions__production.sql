-- Whole-company production by year; one row per company and year (the largest kind if several).
with ranked as (
    select
        company_id,
        cast(year as bigint) as year,
        cast(value as double) as production,
        unit as production_unit,
        row_number() over (partition by company_id, year order by value desc, unit) as rn
    from {{ source('emissions', 'production') }}
    where segment is null and value is not null and value > 0
)
select company_id, year, production, production_unit
from ranked
where rn = 1
