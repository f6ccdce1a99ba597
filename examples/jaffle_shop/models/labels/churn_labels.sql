-- Churn labels: for each customer, every 7 days from the day after their first order (to 30
-- days before the end of the data), did the customer order again within the next 30 days?
-- `label_ts` is the prediction time; the customer's usual store is the store of their latest
-- order at or before label_ts, so the label frame can join store features too.
with orders as (
    select customer_id, store_id, ordered_at from {{ ref('stg_orders') }}
),

spine as (
    {{ featurestore.entity_spine(ref('int_customer_order_days'), 'customer_id',
        "cast(first_day as timestamp) + " ~ featurestore.interval('1d'),
        "cast(last_day as timestamp) - " ~ featurestore.interval('30d'), '7d', 'label_ts') }}
),

labelled as (
    select
        spine.customer_id,
        spine.label_ts,
        (
            select orders.store_id
            from orders
            where orders.customer_id = spine.customer_id and orders.ordered_at <= spine.label_ts
            order by orders.ordered_at desc, orders.store_id desc
            limit 1
        ) as store_id,
        case when exists (
            select 1 from orders
            where orders.customer_id = spine.customer_id
              and orders.ordered_at > spine.label_ts
              and orders.ordered_at <= spine.label_ts + {{ featurestore.interval('30d') }}
        ) then 0 else 1 end as churned_30d
    from spine
)

select customer_id, store_id, label_ts, churned_30d from labelled
