select
    company_id,
    base_company_id,
    cast(investment_value_eur as double) as investment_value_eur
from {{ source('portfolio_alignment', 'portfolio_holdings') }}
