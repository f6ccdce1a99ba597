{{ featurestore._registry_table('features') }}
