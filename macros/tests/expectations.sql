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


{% macro _expectation_literal(value, model, column_name, key) %}
    {#- A value from the YAML as a SQL literal: numbers as numbers, strings quoted with quotes
        doubled; anything else is refused, naming the model, column and key. -#}
    {%- if value is boolean -%}
        {{ return('true' if value else 'false') }}
    {%- elif value is number -%}
        {{ return(value | string) }}
    {%- elif value is string and key == 'values' -%}
        {{ return("'" ~ value | replace("'", "''") ~ "'") }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error("featurestore: model '" ~ model.identifier ~ "', column '" ~ column_name ~ "': expect." ~ key ~ " must be " ~ ("a list of numbers or strings" if key == 'values' else "a number") ~ ", got " ~ value) }}
{% endmacro %}


{% test feature_expectation(model, column_name) %}
    {%- set expect = featurestore._column_meta(model, column_name) -%}
    {%- set column = adapter.quote(column_name) -%}
    {%- set checks = [] -%}
    {%- for bound, operator in [('min', '<'), ('max', '>')] if expect.get(bound) is not none -%}
        {%- set literal = featurestore._expectation_literal(expect[bound], model, column_name, bound) -%}
        {%- do checks.append("select " ~ dbt.string_literal(bound ~ ' ' ~ literal) ~ " as failed_check, cast(count(*) as " ~ dbt.type_string() ~ ") as observed from _fs_rows where " ~ column ~ " " ~ operator ~ " " ~ literal ~ " having count(*) > 0") -%}
    {%- endfor -%}
    {%- if expect.get('values') -%}
        {%- if expect['values'] is string or expect['values'] is not iterable -%}
            {{ exceptions.raise_compiler_error("featurestore: model '" ~ model.identifier ~ "', column '" ~ column_name ~ "': expect.values must be a list, got " ~ expect['values']) }}
        {%- endif -%}
        {%- set allowed = [] -%}
        {%- for value in expect['values'] -%}
            {%- do allowed.append(featurestore._expectation_literal(value, model, column_name, 'values')) -%}
        {%- endfor -%}
        {%- do checks.append("select 'values', cast(count(*) as " ~ dbt.type_string() ~ ") from _fs_rows where " ~ column ~ " not in (" ~ (allowed | join(', ')) ~ ") having count(*) > 0") -%}
    {%- endif -%}
    {%- if expect.get('max_null_rate') is not none -%}
        {%- set rate = featurestore._expectation_literal(expect['max_null_rate'], model, column_name, 'max_null_rate') -%}
        {%- do checks.append("select " ~ dbt.string_literal('max_null_rate ' ~ rate) ~ ", cast(avg(case when " ~ column ~ " is null then 1.0 else 0.0 end) as " ~ dbt.type_string() ~ ") from _fs_rows having avg(case when " ~ column ~ " is null then 1.0 else 0.0 end) > " ~ rate) -%}
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
    {%- set event = featurestore._q(spec['event_timestamp']) %}
    select max({{ event }}) as newest_event
    from {{ model }}
    having max({{ event }}) < {{ dbt.current_timestamp() }} - {{ featurestore.interval(meta['max_staleness']) }}
        or max({{ event }}) is null
    {%- else %}
    select 1 as newest_event from {{ model }} where 1 = 0
    {%- endif %}
{% endtest %}
