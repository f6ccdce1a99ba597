{{ featurestore._registry_table('entities') }}
