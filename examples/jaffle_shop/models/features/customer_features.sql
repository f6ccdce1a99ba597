-- Customer features on a daily spine: one row per customer and day, as of midnight at the
-- end of that day (feature_ts), from the day of the customer's first order to the last day
-- with data. Every value uses only orders placed at or before feature_ts.
with orders as (
    select customer_id, ordered_at, order_total, loaded_at from {{ ref('stg_orders') }}
),

spine as (
    {{ featurestore.entity_spine(ref('int_customer_order_days'), 'customer_id',
        "cast(first_day as timestamp) + " ~ featurestore.interval('1d'),
        "cast(last_day as timestamp) + " ~ featurestore.interval('1d'), '1d', 'feature_ts') }}
),

windowed as (
    {{ featurestore.rolling_window(
        source='orders',
        partition_by='customer_id',
        timestamp_column='ordered_at',
        load_time_column='loaded_at',
        spine='(select customer_id, feature_ts as ordered_at from spine)',
        aggregates=[
            {'name': 'total_orders_30d', 'fn': 'count', 'window': '30d'},
            {'name': 'order_value_sum_30d', 'fn': 'sum', 'column': 'order_total', 'window': '30d'},
            {'name': 'total_orders', 'fn': 'count'},
            {'name': 'lifetime_value', 'fn': 'sum', 'column': 'order_total'},
            {'name': 'days_since_last_order', 'fn': 'days_since'},
        ]) }}
)

select
    customer_id,
    ordered_at as feature_ts,
    loaded_at,
    total_orders_30d,
    -- double, not decimal: IEEE division gives the same bits on every warehouse
    case when total_orders_30d > 0 then cast(order_value_sum_30d as {{ featurestore.type_double() }}) / total_orders_30d end
        as avg_order_value_30d,
    cast(days_since_last_order as integer) as days_since_last_order,
    cast(case
        when total_orders <= 1 then 'new'
        when total_orders_30d >= 8 then 'loyal'
        when days_since_last_order > 30 then 'lapsed'
        else 'regular'
    end as varchar(16)) as customer_segment,
    cast(lifetime_value as decimal(18, 2)) as lifetime_value
from windowed
