{{ featurestore._registry_table('feature_views') }}
