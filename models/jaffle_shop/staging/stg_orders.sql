select
    cast(id as varchar(64)) as order_id,
    cast(customer as varchar(64)) as customer_id,
    cast(store_id as varchar(64)) as store_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(cast(subtotal as decimal(18, 2)) / 100 as decimal(18, 2)) as subtotal,
    cast(cast(tax_paid as decimal(18, 2)) / 100 as decimal(18, 2)) as tax_paid,
    cast(cast(order_total as decimal(18, 2)) / 100 as decimal(18, 2)) as order_total
from {{ source('jaffle_raw', 'raw_orders') }}
