-- Request-time features: each column's expression (in _on_demand.yml) over the request's fields
-- and customer_features' values. This model is a view of no rows that lets `dbt build` check
-- every expression in the warehouse; the values are computed per request (training sets and
-- online reads alike).
{{ featurestore.on_demand_view() }}
