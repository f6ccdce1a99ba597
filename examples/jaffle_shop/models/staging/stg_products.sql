select
    cast(sku as varchar(32)) as sku,
    cast(name as varchar(200)) as product_name,
    cast(type as varchar(32)) as product_type,
    cast(cast(price as decimal(18, 2)) / 100 as decimal(18, 2)) as price
from {{ source('jaffle_raw', 'raw_products') }}
