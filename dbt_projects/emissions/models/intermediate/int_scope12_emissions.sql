-- S1+S2 per company and year: the reported combined figure when there is one, else S1 + S2.
with pivoted as (
    select
        company_id,
        year,
        max(case when scope = 'S1' then emissions_t_co2e end) as s1,
        max(case when scope = 'S2' then emissions_t_co2e end) as s2,
        max(case when scope = 'S1S2' then emissions_t_co2e end) as s1s2
    from {{ ref('stg_emissions__scope_totals') }}
    group by company_id, year
)
select
    company_id,
    year,
    coalesce(s1s2, s1 + s2) as emissions_t_co2e,
    case when s1s2 is not null then 'reported_s1s2' else 's1_plus_s2' end as emissions_basis
from pivoted
where s1s2 is not null or (s1 is not null and s2 is not null)
