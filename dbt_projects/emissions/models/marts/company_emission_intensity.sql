-- Physical emission intensity (S1+S2 per unit of production) per company and year.
select
    e.company_id || ':' || cast(e.year as varchar) as company_year,
    e.company_id,
    c.company_name,
    c.sector,
    c.region,
    e.year,
    e.emissions_t_co2e,
    e.emissions_basis,
    p.production,
    p.production_unit,
    e.emissions_t_co2e / p.production as intensity_t_co2e_per_unit
from {{ ref('int_scope12_emissions') }} as e
inner join {{ ref('stg_emissions__production') }} as p
    on p.company_id = e.company_id and p.year = e.year
inner join {{ ref('stg_companies__companies') }} as c
    on c.company_id = e.company_id
