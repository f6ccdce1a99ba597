{#
  Data tests every feature view gets (listed under `data_tests:` of the model). They read keys
  and timestamps from the view's YAML metadata, so nothing is declared twice.
#}

{% macro _feature_view_keys(model) %}
    {#- Join keys of the feature view behind a relation; a placeholder at parse time. -#}
    {%- if not execute -%}
        {{ return('1') }}
    {%- endif -%}
    {{ return(featurestore._q_list(featurestore.feature_view_spec(featurestore._feature_view_node(model))['keys'])) }}
{% endmacro %}


{% macro _feature_view_node(model) %}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
            and (node.alias or node.name) | lower == model.identifier | lower -%}
        {{ return(node) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("featurestore: no model found for relation " ~ model) }}
{% endmacro %}


{% test feature_view_keys_not_null(model) %}
    {#- Rows with a NULL join key, event or created timestamp are set aside in
        <table>__rejected by the materialization; this test fails while any are there. -#}
    {%- if execute %}
    select * from {{ featurestore.rejected_relation(model) }}
    {%- else %}
    select * from {{ model }}
    {%- endif %}
{% endtest %}


{% test feature_view_unique_versions(model) %}
    {#- One winning version per key and valid_from. -#}
    {%- set keys = featurestore._feature_view_keys(model) -%}
    select {{ keys }}, valid_from, count(*) as versions
    from {{ model }}
    where valid_to is null or valid_to > valid_from
    group by {{ keys }}, valid_from
    having count(*) > 1
{% endtest %}


{% test feature_view_intervals_do_not_overlap(model) %}
    {#- The winning versions of a key tile time: each interval ends where the next begins,
        only the last is open, and none is empty or reversed. -#}
    {%- set keys = featurestore._feature_view_keys(model) -%}
    select *
    from (
        select
            {{ keys }}, valid_from, valid_to,
            lead(valid_from) over (partition by {{ keys }} order by valid_from) as next_valid_from
        from {{ model }}
        where valid_to is null or valid_to > valid_from
    ) as _fs_intervals
    where (valid_to is null and next_valid_from is not null)
       or (valid_to is not null and (next_valid_from is null or valid_to <> next_valid_from))
{% endtest %}
