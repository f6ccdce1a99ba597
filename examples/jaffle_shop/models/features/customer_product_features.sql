-- Composite-key features (customer x product type), one row per customer, product type and
-- order time at which the customer bought that type; values over the 90 days up to and
-- including that order.
with items as (
    select
        orders.customer_id,
        products.product_type,
        orders.ordered_at,
        orders.loaded_at,
        products.price
    from {{ ref('stg_order_items') }} as items
    inner join {{ ref('stg_orders') }} as orders on orders.order_id = items.order_id
    inner join {{ ref('stg_products') }} as products on products.sku = items.sku
),

windowed as (
    {{ featurestore.rolling_window(
        source='items',
        partition_by=['customer_id', 'product_type'],
        timestamp_column='ordered_at',
        load_time_column='loaded_at',
        aggregates=[
            {'name': 'items_bought_90d', 'fn': 'count', 'window': '90d'},
            {'name': 'spend_90d', 'fn': 'sum', 'column': 'price', 'window': '90d'},
        ]) }}
)

select
    customer_id,
    product_type,
    ordered_at as feature_ts,
    loaded_at,
    items_bought_90d,
    cast(spend_90d as decimal(18, 2)) as spend_90d
from windowed
