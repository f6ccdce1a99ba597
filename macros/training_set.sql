{#
  Training sets as dbt models: the label rows of a relation joined point-in-time with the
  features of a feature service, by the same SQL as the Python SDK's export
  (featurestore_py/featurestore/sql/point_in_time.sql, one of this package's macro-paths).

  The feature service is the `ml` exposure of that name; its feature list, each view's keys,
  TTL and snapshot table are read from the graph when the model runs. dbt learns a model's
  dependencies when it parses it, before the graph is known, so the model names the feature
  views it reads in `-- depends_on: {{ ref('<view>') }}` lines; dbt stops with an error naming
  any it lacks.
#}

{% macro training_set(entities, feature_service, timestamp_column='event_timestamp', full_feature_names=false) %}
    {{ return(adapter.dispatch('training_set', 'featurestore')(entities, feature_service, timestamp_column, full_feature_names)) }}
{% endmacro %}


{% macro default__training_set(entities, feature_service, timestamp_column, full_feature_names) %}
    {%- if entities.render is not defined -%}
        {{ exceptions.raise_compiler_error("featurestore.training_set in model '" ~ model.name ~ "' (" ~ model.original_file_path ~ "): `entities` must be a relation — ref('<model>') or source('<source>', '<table>') — not " ~ (("the string '" ~ entities ~ "'") if entities is string else (entities | string)) ~ ". Write featurestore.training_set(ref('my_labels'), ...).") }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return('select 1 as _fs_parsed') }}
    {%- endif -%}
    {%- set where = "featurestore.training_set in model '" ~ model.name ~ "'" -%}
    {%- set entity_columns = adapter.get_columns_in_relation(entities) | map(attribute='name') | list -%}
    {%- if entity_columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(where ~ ": the entity relation " ~ entities ~ " does not exist or has no columns; build it first.") }}
    {%- endif -%}
    {%- if timestamp_column not in entity_columns -%}
        {{ exceptions.raise_compiler_error(where ~ ": the entity relation " ~ entities ~ " has no timestamp column '" ~ timestamp_column ~ "'; its columns: " ~ (entity_columns | join(', '))) }}
    {%- endif -%}
    {%- set views = [] -%}
    {%- set outputs = {} -%}
    {%- set planned = featurestore._plan_on_demand(featurestore._service_features(feature_service, where), entity_columns, full_feature_names, outputs, where) -%}
    {%- for view_name, names in planned['views'].items() -%}
        {%- set node = featurestore._model_named(view_name, where) -%}
        {%- set spec = featurestore.feature_view_spec(node) -%}
        {%- set ttl = (node.config.meta.featurestore or {}).get('ttl') -%}
        {%- set features = [] -%}
        {%- for name in names -%}
            {%- if name not in node.columns or name in spec['keys'] or name in [spec['event_timestamp'], spec['created_timestamp']] -%}
                {{ exceptions.raise_compiler_error(where ~ ": feature service '" ~ feature_service ~ "' asks for '" ~ view_name ~ ":" ~ name ~ "', which is not a feature of " ~ view_name ~ " (" ~ spec['where'] ~ ")") }}
            {%- endif -%}
            {%- set output = (view_name ~ '__' ~ name) if full_feature_names else name -%}
            {%- if output | lower in outputs or output | lower in (entity_columns | map('lower') | list) -%}
                {{ exceptions.raise_compiler_error(where ~ ": two columns would be named '" ~ output ~ "' (" ~ (outputs.get(output | lower) or ('a column of ' ~ entities)) ~ " and " ~ view_name ~ "); pass full_feature_names=true") }}
            {%- endif -%}
            {%- do outputs.update({output | lower: view_name}) -%}
            {%- do features.append((name, output)) -%}
        {%- endfor -%}
        {%- for name, column in planned['hidden'].get(view_name, []) -%}
            {%- do features.append((name, column)) -%}
        {%- endfor -%}
        {%- set keys = [] -%}
        {%- for key in spec['keys'] -%}
            {%- if key not in entity_columns -%}
                {{ exceptions.raise_compiler_error(where ~ ": the entity relation " ~ entities ~ " has no column '" ~ key ~ "', a join key of feature view '" ~ view_name ~ "'") }}
            {%- endif -%}
            {%- do keys.append((key, key)) -%}
        {%- endfor -%}
        {#- Always ASOF on DuckDB, while the SDK chooses per view by a measured crossover
            (featurestore/retrieval/job.py choose_strategy): choosing needs the entity rows' count and the snapshot's
            rows per key, queries this macro does not run. Both joins give the same rows; the ASOF
            join's work grows with entity rows + feature rows, the interval join's with entity rows
            x rows per key, so without those numbers ASOF is the one that cannot blow up. -#}
        {%- do views.append({
            'alias': '_fs_v' ~ loop.index0,
            'relation': ref(view_name),
            'join_keys': keys,
            'features': features,
            'ttl_seconds': none if ttl in (none, '') else (featurestore._duration_microseconds(ttl, view_name ~ ' ttl') // 1000000) | int,
            'strategy': 'asof' if adapter.type() == 'duckdb' else 'interval',
            'created': spec['created_timestamp'],
            'known_at': none,
        }) -%}
    {%- endfor -%}
    {{ return(featurestore.point_in_time(dialect=adapter.type(), entities=entities, entity_columns=entity_columns,
                                         timestamp=timestamp_column, views=views, match_columns=false,
                                         ordered=none, quote=featurestore._q, event_columns=false,
                                         on_demand=planned['on_demand'])) }}
{% endmacro %}


{% macro _plan_on_demand(by_view, entity_columns, full_feature_names, outputs, where) %}
    {#- The rule of requests.plan_features: the service's on-demand features taken out of
        by_view; the inputs their expressions use read as hidden columns _fs_in_<view>__<feature>
        (after each view's own features; views read only for inputs after the others); the request
        fields they use taken from the entity columns of those names. Returns {views: {view:
        [feature]}, hidden: {view: [(feature, column)]}, on_demand: none or point_in_time's
        on_demand argument}. An expression uses a name when the name appears in it as a word. -#}
    {%- set views, hidden = {}, {} -%}
    {%- set spec = {'requests': [], 'inputs': [], 'features': [], 'hidden': []} -%}
    {%- set on_demand = [] -%}
    {%- for view_name, names in by_view.items() -%}
        {%- set node = featurestore._model_named(view_name, where) -%}
        {%- if featurestore._is_on_demand_view(node) -%}
            {%- do on_demand.append((view_name, node, names)) -%}
        {%- else -%}
            {%- do views.update({view_name: names}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for view_name, node, names in on_demand -%}
        {%- set view = featurestore._on_demand_spec(node, where) -%}
        {%- set expressions = {} -%}
        {%- for name, expression, data_type in view['features'] -%}
            {%- do expressions.update({name: (expression, data_type)}) -%}
        {%- endfor -%}
        {%- set used = [] -%}
        {%- for name in names -%}
            {%- if name not in expressions -%}
                {{ exceptions.raise_compiler_error(where ~ ": '" ~ view_name ~ ":" ~ name ~ "' is not a feature of the on-demand view " ~ view_name) }}
            {%- endif -%}
            {%- for candidate, _ in view['scope'] if modules.re.search('(?<![A-Za-z0-9_])' ~ modules.re.escape(candidate) ~ '(?![A-Za-z0-9_])', expressions[name][0]) -%}
                {%- do used.append(candidate) -%}
            {%- endfor -%}
            {%- set output = (view_name ~ '__' ~ name) if full_feature_names else name -%}
            {%- if output | lower in outputs or output | lower in (entity_columns | map('lower') | list) -%}
                {{ exceptions.raise_compiler_error(where ~ ": two columns would be named '" ~ output ~ "' (" ~ (outputs.get(output | lower) or 'a column of the entity relation') ~ " and " ~ view_name ~ "); pass full_feature_names=true") }}
            {%- endif -%}
            {%- do outputs.update({output | lower: view_name}) -%}
            {%- do spec['features'].append((output, expressions[name][0], featurestore.column_type(expressions[name][1]))) -%}
        {%- endfor -%}
        {%- for field, data_type in view['request'] if field in used -%}
            {%- if field not in entity_columns -%}
                {{ exceptions.raise_compiler_error(where ~ ": the entity relation has no column '" ~ field ~ "', a request field of the on-demand view " ~ view_name ~ " (" ~ (names | join(', ')) ~ ")") }}
            {%- endif -%}
            {%- if field not in spec['requests'] | map(attribute=0) | list -%}
                {%- do spec['requests'].append((field, featurestore.column_type(data_type))) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for source, feature, data_type in view['inputs'] if feature in used -%}
            {%- set column = '_fs_in_' ~ source ~ '__' ~ feature -%}
            {%- if (column, feature) not in spec['inputs'] -%}
                {%- do spec['inputs'].append((column, feature)) -%}
                {%- do spec['hidden'].append(column) -%}
                {%- do hidden.setdefault(source, []).append((feature, column)) -%}
                {%- if source not in views -%}
                    {%- do views.update({source: []}) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return({'views': views, 'hidden': hidden, 'on_demand': spec if on_demand else none}) }}
{% endmacro %}


{% macro _service_features(feature_service, where) %}
    {#- {view: [feature, ...]} of the `ml` exposure named feature_service, in its listed order;
        without a list, every feature of the feature views it depends on (the registry's rule). -#}
    {%- set found = [] -%}
    {%- for exposure in graph.exposures.values() if exposure.name == feature_service and exposure.type == 'ml' -%}
        {%- do found.append(exposure) -%}
    {%- endfor -%}
    {%- if found | length == 0 -%}
        {%- set services = [] -%}
        {%- for exposure in graph.exposures.values() if exposure.type == 'ml' -%}
            {%- do services.append(exposure.name) -%}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error(where ~ ": no feature service (exposure of type ml) named '" ~ feature_service ~ "'; services: " ~ (services | join(', ') or 'none')) }}
    {%- endif -%}
    {%- set exposure = found[0] -%}
    {%- set meta = ((exposure.config or {}).get('meta') or exposure.meta or {}).get('featurestore') or {} -%}
    {%- set listed = meta.get('features') -%}
    {%- if listed is not none and (listed is string or listed is mapping or listed is not iterable or (listed | reject('string') | list | length) > 0) -%}
        {{ exceptions.raise_compiler_error(where ~ ": `features: " ~ listed ~ "` of feature service '" ~ feature_service ~ "' must be a list of 'view:feature' references, e.g. `features: [customer_features:total_orders_30d]`") }}
    {%- endif -%}
    {%- set references = [] -%}
    {%- if listed -%}
        {%- do references.extend(listed) -%}
    {%- else -%}
        {%- for uid in exposure.depends_on.nodes if uid in graph.nodes and graph.nodes[uid].resource_type == 'model' -%}
            {%- set node = graph.nodes[uid] -%}
            {%- if featurestore._is_feature_view(node) -%}
                {%- for name in featurestore._feature_names(node) -%}
                    {%- do references.append(node.name ~ ':' ~ name) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if references | length == 0 -%}
        {{ exceptions.raise_compiler_error(where ~ ": feature service '" ~ feature_service ~ "' uses no features: list `features:` or depend on a feature view") }}
    {%- endif -%}
    {%- set by_view = {} -%}
    {%- for reference in references -%}
        {%- set parts = reference.split(':') -%}
        {%- if parts | length != 2 or not parts[0] or not parts[1] -%}
            {{ exceptions.raise_compiler_error(where ~ ": feature reference '" ~ reference ~ "' of service '" ~ feature_service ~ "' is not of the form 'view:feature'") }}
        {%- endif -%}
        {%- if parts[0] not in by_view -%}
            {%- do by_view.update({parts[0]: []}) -%}
        {%- endif -%}
        {%- if parts[1] not in by_view[parts[0]] -%}
            {%- do by_view[parts[0]].append(parts[1]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(by_view) }}
{% endmacro %}


{% macro _is_feature_view(node) %}
    {#- Whether a graph node is a feature view, by the registry's rule: a model whose
        config.meta.featurestore has an event timestamp, or names entities rather than declaring
        them (a model that declares entities lists mappings). -#}
    {%- if node.resource_type != 'model' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set view_meta = (node.config.meta or {}).get('featurestore') or {} -%}
    {%- set view_entities = view_meta.get('entities') -%}
    {{ return(true if 'event_timestamp' in view_meta or view_entities is string
              or (view_entities is sequence and view_entities is not mapping
                  and (view_entities | reject('string') | list | length) == 0) else false) }}
{% endmacro %}


{% macro _feature_names(node) %}
    {#- The features of a feature-view node: its YAML columns but the join keys and timestamps. -#}
    {%- set spec = featurestore.feature_view_spec(node) -%}
    {%- set names = [] -%}
    {%- for column in node.columns if column not in spec['keys'] and column not in [spec['event_timestamp'], spec['created_timestamp']] -%}
        {%- do names.append(column) -%}
    {%- endfor -%}
    {{ return(names) }}
{% endmacro %}


{% macro _model_named(view_name, where) %}
    {#- The graph node of the feature-view model named view_name. -#}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name == view_name -%}
        {{ return(node) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(where ~ ": no model named '" ~ view_name ~ "' (a feature view of the service)") }}
{% endmacro %}
