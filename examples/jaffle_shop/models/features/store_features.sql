-- Store features on a daily spine: one row per store and day, as of midnight at the end of
-- that day (feature_ts), from the store's opening day to the last day with data.
with orders as (
    select store_id, ordered_at, order_total, loaded_at from {{ ref('stg_orders') }}
),

bounds as (
    select
        stores.store_id,
        cast(stores.opened_at as date) as first_day,
        (select cast(max(ordered_at) as date) from orders) as last_day
    from {{ ref('stg_stores') }} as stores
),

spine as (
    {{ featurestore.entity_spine('bounds', 'store_id',
        "cast(first_day as timestamp) + " ~ featurestore.interval('1d'),
        "cast(last_day as timestamp) + " ~ featurestore.interval('1d'), '1d', 'feature_ts') }}
),

windowed as (
    {{ featurestore.rolling_window(
        source='orders',
        partition_by='store_id',
        timestamp_column='ordered_at',
        load_time_column='loaded_at',
        spine='(select store_id, feature_ts as ordered_at from spine)',
        aggregates=[
            {'name': 'orders_7d', 'fn': 'count', 'window': '7d'},
            {'name': 'revenue_7d', 'fn': 'sum', 'column': 'order_total', 'window': '7d'},
            {'name': 'orders_28d', 'fn': 'count', 'window': '28d'},
            {'name': 'revenue_28d', 'fn': 'sum', 'column': 'order_total', 'window': '28d'},
        ]) }}
)

select
    store_id,
    ordered_at as feature_ts,
    loaded_at,
    orders_7d,
    cast(revenue_7d as decimal(18, 2)) as revenue_7d,
    orders_28d,
    cast(revenue_28d as decimal(18, 2)) as revenue_28d
from windowed
