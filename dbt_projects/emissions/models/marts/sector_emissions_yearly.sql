{{
  config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['sector', 'year'],
    meta={'mesh': {'partitioned_by': 'yearly', 'partition_column': 'period_start', 'start': '2015', 'end': '2023'}},
  )
}}
-- S1+S2 emissions per sector and year. Incremental: each run processes only its window of years
-- (the Dagster partitions it materializes), replacing those years and leaving the others alone.
-- The partitions cover the years of the ITR sample, 2015-2022 (`end` is exclusive).
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
