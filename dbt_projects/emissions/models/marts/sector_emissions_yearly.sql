{{
  config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['sector', 'year'],
    meta={'mesh': {'partitioned_by': 'yearly', 'partition_column': 'period_start', 'start': '2015'}},
  )
}}
-- S1+S2 emissions per sector and year. Incremental: each run processes only its window of years
-- (the Dagster partitions it materializes), replacing those years and leaving the others alone.
-- The partitions run from 2015, the first year the product covers, to the last complete year: no
-- `end`, so a drop with newer figures has their years without a change here (a year not in the drop's
-- figures is an empty partition).
select
    cast(cast(e.year as varchar) || '-01-01' as date) as period_start,
    e.year,
    c.sector,
    count(*) as n_companies,
    sum(e.emissions_t_co2e) as emissions_t_co2e
from {{ ref('int_scope12_emissions') }} as e
inner join {{ ref('stg_companies__companies') }} as c
    on c.company_id = e.company_id
where c.sector is not null
{{ mesh_window("cast(cast(e.year as varchar) || '-01-01' as date)") }}
group by e.year, c.sector
