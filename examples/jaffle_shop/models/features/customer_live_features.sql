-- Live features pushed by the web shop as they happen (POST /push to `featurestore serve --push`,
-- or FeatureStore.push): each customer's cart. There is no batch source; the rows are the pushed
-- ones, which the push wrote to the landing area (landing/customer_live_features/*.parquet).
-- Built like any feature view, so training sets see exactly what serving saw.
select customer_id, event_at, pushed_at, cart_items, cart_value
from {{ featurestore.pushed_rows('customer_live_features') }} as pushed
