{#
  The registry as tables: the package's models (models/) featurestore_feature_views,
  featurestore_features, featurestore_entities and featurestore_services. Each is a view over
  literal rows, read from dbt's graph when the model runs, by the macros that build feature views
  and training sets (_declared_entities, feature_view_spec, _is_feature_view, _feature_names,
  _service_features): the tables say what those macros, and the Python registry, see.
  Lists and meta are JSON text, so every engine can store and parse them.
#}

{% macro _registry_table(table) %}
    {#- The select of one registry table: its typed columns, its rows from the graph (none at
        parse time, when the graph is not complete). -#}
    {%- set columns = featurestore._registry_columns(table) -%}
    {%- set rows = featurestore._registry_rows(table) if execute else [] -%}
    {{ return(featurestore._registry_select(columns, rows)) }}
{% endmacro %}


{% macro _registry_columns(table) %}
    {#- (name, type) of each column of a registry table; models/_models.yml describes them. -#}
    {%- set text, flag = dbt.type_string(), dbt.type_boolean() -%}
    {%- set columns = {
        'feature_views': [('name', text), ('relation', text), ('entities', text), ('join_keys', text),
                          ('event_timestamp', text), ('created_timestamp', text), ('ttl', text), ('online', flag),
                          ('owner', text), ('description', text), ('tags', text), ('meta', text)],
        'features': [('view', text), ('feature', text), ('reference', text), ('data_type', text),
                     ('description', text), ('owner', text)],
        'entities': [('name', text), ('join_keys', text), ('description', text), ('declared_in', text)],
        'services': [('name', text), ('features', text), ('owner', text), ('description', text)],
    } -%}
    {%- if table not in columns -%}
        {{ exceptions.raise_compiler_error("featurestore._registry_table: no registry table '" ~ table ~ "'; tables: " ~ (columns.keys() | list | join(', '))) }}
    {%- endif -%}
    {{ return(columns[table]) }}
{% endmacro %}


{% macro _registry_rows(table) %}
    {#- The rows of a registry table, in the order of its columns, sorted by name. -#}
    {%- set rows = [] -%}
    {%- if table == 'entities' -%}
        {%- for entity in featurestore._declared_entities().values() | map('first') | sort(attribute='name') -%}  {#- the first declaration, as the registry -#}
            {%- do rows.append([entity.name, tojson(entity.join_keys), entity.description or '', entity.declared_in]) -%}
        {%- endfor -%}
    {%- elif table == 'services' -%}
        {%- for exposure in graph.exposures.values() | sort(attribute='name') if exposure.type == 'ml' -%}
            {%- set references = [] -%}
            {%- set where = "featurestore_services (the feature service '" ~ exposure.name ~ "')" -%}
            {%- set service_meta = ((exposure.config or {}).get('meta') or exposure.meta or {}).get('featurestore') or {} -%}
            {%- set uses_views = [] -%}
            {%- for uid in exposure.depends_on.nodes if uid in graph.nodes and featurestore._is_feature_view(graph.nodes[uid]) -%}
                {%- do uses_views.append(uid) -%}
            {%- endfor -%}
            {#- a feature service lists `features:` or depends on a feature view, as in the registry;
                an ml exposure of other models only (a model trained elsewhere) is not one -#}
            {%- if 'features' in service_meta or uses_views -%}
                {%- for view, names in featurestore._service_features(exposure.name, where).items() -%}
                    {%- for name in names -%}
                        {%- do references.append(view ~ ':' ~ name) -%}
                    {%- endfor -%}
                {%- endfor -%}
                {%- set owner = exposure.owner or {} -%}
                {%- do rows.append([exposure.name, tojson(references), owner.get('email') or owner.get('name'), exposure.description or '']) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') if featurestore._is_feature_view(node) -%}
            {%- set spec = featurestore.feature_view_spec(node) -%}
            {%- set meta = node.config.meta.featurestore -%}
            {%- set owner = meta.owner if meta.owner is string else none -%}
            {%- if table == 'feature_views' -%}
                {%- set tags = meta.get('tags') or [] -%}
                {%- do rows.append([node.name, node.relation_name or node.name, tojson(meta.entities), tojson(spec['keys']),
                                    spec['event_timestamp'], spec['created_timestamp'],
                                    none if meta.get('ttl') in (none, '') else meta.ttl | string,
                                    meta.get('online') is sameas true, owner, node.description or '',
                                    tojson((tags if tags is iterable and tags is not string and tags is not mapping else []) | map('string') | list),
                                    tojson(meta, sort_keys=true)]) -%}
            {%- else -%}
                {%- for name in featurestore._feature_names(node) -%}
                    {%- set column = node.columns[name] -%}
                    {%- do rows.append([node.name, name, node.name ~ ':' ~ name, column.data_type, column.description or '', owner]) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(rows) }}
{% endmacro %}


{% macro _registry_select(columns, rows) %}
    {#- Literal rows (strings, booleans, none) cast to the columns' types; no rows: an empty
        relation of the same columns. -#}
    {%- set selects = [] -%}
    {%- for row in (rows or [[none] * (columns | length)]) -%}
        {%- set values = [] -%}
        {%- for value in row -%}
            {%- set literal = 'null' if value is none else ((value | string | lower) if value is boolean else featurestore.sql_string(value)) -%}
            {%- do values.append(literal ~ ' as ' ~ featurestore._q(columns[loop.index0][0])) -%}
        {%- endfor -%}
        {%- do selects.append('select ' ~ (values | join(', '))) -%}
    {%- endfor -%}
select
    {%- for name, type in columns %}
    cast({{ featurestore._q(name) }} as {{ type }}) as {{ featurestore._q(name) }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
    {{ selects | join('\n    union all ') }}
) as _fs_registry
{%- if not rows %}
where 1 = 0
{%- endif %}
{% endmacro %}


{% macro sql_string(value) %}
    {{ return(adapter.dispatch('sql_string', 'featurestore')(value)) }}
{% endmacro %}

{# SQL's standard literal: quotes doubled; everything else (newlines, backslashes, braces) as is. #}
{% macro default__sql_string(value) -%}
    {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}
