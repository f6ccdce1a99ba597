{{ config(enabled=var('featurestore_registry_tables', true)) }}
{{ featurestore._registry_table('services') }}
