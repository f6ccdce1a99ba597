{{ featurestore._registry_table('services') }}
