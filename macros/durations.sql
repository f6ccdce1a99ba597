{#
  Durations are written the same way everywhere in the project: a whole number and a unit,
  `30d`, `12h`, `15m`, `45s`, `2w`, at most 100 years. The Python registry parses the same
  grammar (featurestore.durations); tests/unit/test_durations.py checks both on one table of cases.
#}

{% macro _parse_duration(duration, context='') %}
    {%- set units = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'} -%}
    {%- set seconds = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800} -%}
    {%- set text = (duration | string) | trim | lower if duration is string else '' -%}
    {%- set number = text[:-1] -%}
    {%- set unit = text[-1:] -%}
    {%- if unit not in units or not number.isdigit() or not number.isascii() or (number | int) <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "featurestore: " ~ context ~ " duration '" ~ duration ~ "' is not valid; write a positive whole number and a unit s, m, h, d or w, e.g. '30d' or '12h'.") }}
    {%- endif -%}
    {%- if (number | int) * seconds[unit] > 100 * 365 * 86400 -%}
        {{ exceptions.raise_compiler_error(
            "featurestore: " ~ context ~ " duration '" ~ duration ~ "' is longer than 100 years; write a shorter duration.") }}
    {%- endif -%}
    {%- if unit == 'w' -%}
        {{ return({'number': (number | int) * 7, 'unit': 'days'}) }}
    {%- endif -%}
    {{ return({'number': number | int, 'unit': units[unit]}) }}
{% endmacro %}


{% macro _duration_microseconds(duration, context='') %}
    {#- A duration as a whole number of microseconds (the grammar of _parse_duration). -#}
    {%- set parsed = featurestore._parse_duration(duration, context) -%}
    {%- set seconds = {'seconds': 1, 'minutes': 60, 'hours': 3600, 'days': 86400}[parsed.unit] -%}
    {{ return(parsed.number * seconds * 1000000) }}
{% endmacro %}


{% macro interval(duration) %}
    {{ return(adapter.dispatch('interval', 'featurestore')(duration)) }}
{% endmacro %}

{% macro default__interval(duration) -%}
    {%- set parsed = featurestore._parse_duration(duration, 'interval') -%}
    interval '{{ parsed.number }} {{ parsed.unit }}'
{%- endmacro %}


{% macro interval_microseconds(microseconds) %}
    {{ return(adapter.dispatch('interval_microseconds', 'featurestore')(microseconds)) }}
{% endmacro %}

{% macro default__interval_microseconds(microseconds) -%}
    interval '{{ microseconds | int }} microseconds'
{%- endmacro %}


{% macro type_double() %}
    {#- An IEEE double column type (dbt's type_float is single precision on some engines). -#}
    {{ return(adapter.dispatch('type_double', 'featurestore')()) }}
{% endmacro %}

{% macro default__type_double() %}double precision{% endmacro %}


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
