-- Whole-company totals by scope and year (segment rows and scope-3 categories are left out).
select
    company_id,
    scope,
    cast(year as bigint) as year,
    cast(emissions_t_co2e as double) as emissions_t_co2e
from {{ source('emissions', 'reported_emissions') }}
where segment is null
  and s3_category is null
  and emissions_t_co2e is not null
