{#
  Feature expectations, declared in a column's YAML meta and checked by dbt like any test:

    columns:
      - name: total_orders_30d
        config: {meta: {featurestore: {expect: {min: 0, max: 1000, max_null_rate: 0.01}}}}
        data_tests: [featurestore.feature_expectation]        # severity: config: {severity: warn}

  expect: min / max (inclusive range), values (allowed values), max_null_rate (0..1).
  Only the winning versions of a snapshot table are checked. A row of the result is one broken
  expectation: the check, and what was observed.

  On a view: `featurestore.feature_freshness` fails when the newest event is older than the
  view's `max_staleness` (meta), measured against the current time.
#}

{% macro _column_meta(model, column_name) %}
    {%- if not execute -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set node = featurestore._feature_view_node(model) -%}
    {%- set column = node.columns.get(column_name) or {} -%}
    {%- set config = column.get('config') or {} -%}
    {{ return(((config.get('meta') or column.get('meta') or {}).get('featurestore') or {}).get('expect') or {}) }}
{% endmacro %}


{% test feature_expectation(model, column_name) %}
    {%- set expect = featurestore._column_meta(model, column_name) -%}
    {%- set column = adapter.quote(column_name) -%}
    {%- set checks = [] -%}
    {%- if expect.get('min') is not none -%}
        {%- do checks.append("select 'min " ~ expect['min'] ~ "' as failed_check, cast(count(*) as " ~ dbt.type_string() ~ ") as observed from _fs_rows where " ~ column ~ " < " ~ expect['min'] ~ " having count(*) > 0") -%}
    {%- endif -%}
    {%- if expect.get('max') is not none -%}
        {%- do checks.append("select 'max " ~ expect['max'] ~ "', cast(count(*) as " ~ dbt.type_string() ~ ") from _fs_rows where " ~ column ~ " > " ~ expect['max'] ~ " having count(*) > 0") -%}
    {%- endif -%}
    {%- if expect.get('values') -%}
        {%- set allowed = [] -%}
        {%- for value in expect['values'] -%}
            {%- do allowed.append(dbt.string_literal(value) if value is string else value) -%}
        {%- endfor -%}
        {%- do checks.append("select 'values', cast(count(*) as " ~ dbt.type_string() ~ ") from _fs_rows where " ~ column ~ " not in (" ~ (allowed | join(', ')) ~ ") having count(*) > 0") -%}
    {%- endif -%}
    {%- if expect.get('max_null_rate') is not none -%}
        {%- do checks.append("select 'max_null_rate " ~ expect['max_null_rate'] ~ "', cast(avg(case when " ~ column ~ " is null then 1.0 else 0.0 end) as " ~ dbt.type_string() ~ ") from _fs_rows having avg(case when " ~ column ~ " is null then 1.0 else 0.0 end) > " ~ expect['max_null_rate']) -%}
    {%- endif -%}
    with _fs_rows as (
        select * from {{ model }} where valid_to is null or valid_to > valid_from
    )
    {%- if checks %}
    {{ checks | join('\n    union all\n    ') }}
    {%- else %}
    select 'none' as failed_check, 'no expectations declared' as observed from _fs_rows where 1 = 0
    {%- endif %}
{% endtest %}


{% test feature_freshness(model) %}
    {%- if execute -%}
        {%- set node = featurestore._feature_view_node(model) -%}
        {%- set meta = (node.config.meta or {}).get('featurestore', {}) -%}
        {%- set spec = featurestore.feature_view_spec(node) -%}
    {%- endif -%}
    {%- if execute and meta.get('max_staleness') %}
    select max({{ spec['event_timestamp'] }}) as newest_event
    from {{ model }}
    having max({{ spec['event_timestamp'] }}) < {{ dbt.current_timestamp() }} - {{ featurestore.interval(meta['max_staleness']) }}
        or max({{ spec['event_timestamp'] }}) is null
    {%- else %}
    select 1 as newest_event from {{ model }} where 1 = 0
    {%- endif %}
{% endtest %}
