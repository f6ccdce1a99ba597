select
    cast(items.id as varchar(64)) as order_item_id,
    cast(items.order_id as varchar(64)) as order_id,
    cast(items.sku as varchar(32)) as sku
from {{ source('jaffle_raw', 'raw_items') }} as items
