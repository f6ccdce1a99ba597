-- The churn model's training set, built by dbt: every row of churn_labels with the features of
-- the churn_model feature service as they were at its label_ts (point-in-time, the same SQL as
-- `featurestore export --feature-service churn_model --entities main.churn_labels`).
-- dbt learns dependencies when it parses, before it can read the service's feature list, so the
-- feature views the service reads are named here; dbt stops with an error if one is missing.
-- depends_on: {{ ref('customer_features') }}
-- depends_on: {{ ref('store_features') }}
{{ config(materialized='table') }}

{{ featurestore.training_set(ref('churn_labels'), 'churn_model', timestamp_column='label_ts') }}
