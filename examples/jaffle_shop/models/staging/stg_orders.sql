-- One row per order: the latest load of each order id wins (a later load is a correction).
-- loaded_at, when the row reached the warehouse, becomes the feature views' created timestamp.
with loads as (
    select
        *,
        row_number() over (partition by id order by loaded_at desc) as load_rank
    from {{ source('jaffle_raw', 'raw_orders') }}
)

select
    cast(id as varchar(64)) as order_id,
    cast(customer as varchar(64)) as customer_id,
    cast(store_id as varchar(64)) as store_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(cast(subtotal as decimal(18, 2)) / 100 as decimal(18, 2)) as subtotal,
    cast(cast(tax_paid as decimal(18, 2)) / 100 as decimal(18, 2)) as tax_paid,
    cast(cast(order_total as decimal(18, 2)) / 100 as decimal(18, 2)) as order_total,
    cast(loaded_at as timestamp) as loaded_at
from loads
where load_rank = 1
