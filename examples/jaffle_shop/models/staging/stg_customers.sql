select
    cast(id as varchar(64)) as customer_id,
    cast(name as varchar(200)) as customer_name
from {{ source('jaffle_raw', 'raw_customers') }}
