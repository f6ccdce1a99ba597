-- Each customer's first order day and the last day with data (any customer's), the bounds of
-- the customer spines.
with orders as (
    select customer_id, ordered_at from {{ ref('stg_orders') }}
)

select
    customer_id,
    cast(min(ordered_at) as date) as first_day,
    (select cast(max(ordered_at) as date) from orders) as last_day
from orders
group by customer_id
