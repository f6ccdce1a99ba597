{#
  Durations are written the same way everywhere in the project: a whole number and a unit,
  `30d`, `12h`, `15m`, `45s`, `2w`. The Python registry parses the same grammar (featurestore.durations).
#}

{% macro _parse_duration(duration, context='') %}
    {%- set units = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'} -%}
    {%- set text = (duration | string) | trim | lower -%}
    {%- set number = text[:-1] -%}
    {%- set unit = text[-1:] -%}
    {%- if unit not in units or not number.isdigit() or (number | int) <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "featurestore: " ~ context ~ " duration '" ~ duration ~ "' is not valid; write a positive whole number and a unit s, m, h, d or w, e.g. '30d' or '12h'.") }}
    {%- endif -%}
    {%- if unit == 'w' -%}
        {{ return({'number': (number | int) * 7, 'unit': 'days'}) }}
    {%- endif -%}
    {{ return({'number': number | int, 'unit': units[unit]}) }}
{% endmacro %}


{% macro interval(duration) %}
    {{ return(adapter.dispatch('interval', 'featurestore')(duration)) }}
{% endmacro %}

{% macro default__interval(duration) -%}
    {%- set parsed = featurestore._parse_duration(duration, 'interval') -%}
    interval '{{ parsed.number }} {{ parsed.unit }}'
{%- endmacro %}


{% macro timestamp_series(start_expression, stop_expression, step) %}
    {{ return(adapter.dispatch('timestamp_series', 'featurestore')(start_expression, stop_expression, step)) }}
{% endmacro %}

{# PostgreSQL and most warehouses: generate_series is a set-returning function usable in a select list. #}
{% macro default__timestamp_series(start_expression, stop_expression, step) -%}
    generate_series({{ start_expression }}, {{ stop_expression }}, {{ featurestore.interval(step) }})
{%- endmacro %}

{# DuckDB's generate_series returns a list in a select list; unnest turns it into rows. #}
{% macro duckdb__timestamp_series(start_expression, stop_expression, step) -%}
    unnest(generate_series({{ start_expression }}, {{ stop_expression }}, {{ featurestore.interval(step) }}))
{%- endmacro %}


{% macro entity_spine(bounds, partition_by, start_expression, stop_expression, step, column) %}
    {#- One row per key of `bounds` and time from start to stop (inclusive) every `step`:
        the points of a daily (or hourly, weekly) feature spine. -#}
    {%- set keys = featurestore._as_list(partition_by, 'entity_spine', 'partition_by') -%}
    select
        {{ keys | join(', ') }},
        {{ featurestore.timestamp_series(start_expression, stop_expression, step) }} as {{ column }}
    from {{ bounds }}
{% endmacro %}
