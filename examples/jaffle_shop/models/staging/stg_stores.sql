select
    cast(id as varchar(64)) as store_id,
    cast(name as varchar(200)) as store_name,
    cast(opened_at as timestamp) as opened_at,
    cast(tax_rate as decimal(6, 4)) as tax_rate
from {{ source('jaffle_raw', 'raw_stores') }}
