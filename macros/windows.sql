{#
  rolling_window: leakage-free windowed aggregates per entity.

  For every point (key, t) the value uses only events of the same key with
  t - window <= event time <= t (both ends inclusive, the same rule as TTL). Points are
  either the events themselves (one point per distinct key and time) or the rows of a
  `spine` relation, e.g. one row per customer and day.

  aggregates: a list of dicts {name, fn, column, window}
    fn: count (rows, or non-null `column`), sum, avg, min, max, days_since (days since the
        latest event in the window, counted in calendar-day boundaries), last_at (the
        latest event time in the window)
    window: a duration ('7d', '12h', ...) or none for all history up to t.
#}

{% macro rolling_window(source, partition_by, timestamp_column, aggregates, spine=none) %}
    {{ return(adapter.dispatch('rolling_window', 'featurestore')(source, partition_by, timestamp_column, aggregates, spine)) }}
{% endmacro %}

{% macro default__rolling_window(source, partition_by, timestamp_column, aggregates, spine=none) %}
    {%- set keys = featurestore._as_list(partition_by, 'rolling_window', 'partition_by') -%}
    {%- set value_columns = featurestore._rolling_window_value_columns(aggregates) -%}
    {%- set key_list = keys | join(', ') -%}
with _fs_events as (
    select
        {{ key_list }},
        {{ timestamp_column }} as _fs_ts,
        {%- for column in value_columns %}
        {{ column }} as _fs_value_{{ loop.index }},
        {%- endfor %}
        1 as _fs_is_event
    from {{ source }} as _fs_source
    where {{ timestamp_column }} is not null
),

_fs_points as (
    {%- if spine is none %}
    select distinct {{ key_list }}, _fs_ts from _fs_events
    {%- else %}
    select distinct {{ key_list }}, {{ timestamp_column }} as _fs_ts from {{ spine }} as _fs_spine
    {%- endif %}
),

_fs_unioned as (
    select {{ key_list }}, _fs_ts,
        {%- for column in value_columns %} _fs_value_{{ loop.index }},{% endfor %}
        _fs_is_event, 0 as _fs_is_point
    from _fs_events
    union all
    select {{ key_list }}, _fs_ts,
        {%- for column in value_columns %} null,{% endfor %}
        0, 1
    from _fs_points
),

_fs_windowed as (
    select
        {{ key_list }},
        _fs_ts,
        _fs_is_point
        {%- for aggregate in aggregates %},
        {{ featurestore._rolling_window_aggregate(aggregate, value_columns, keys) }} as {{ aggregate.name }}
        {%- endfor %}
    from _fs_unioned
)

select
    {{ key_list }},
    _fs_ts as {{ timestamp_column }}
    {%- for aggregate in aggregates %},
    {{ aggregate.name }}
    {%- endfor %}
from _fs_windowed
where _fs_is_point = 1
{% endmacro %}


{% macro _as_list(value, macro_name, argument) %}
    {%- if value is string -%}
        {{ return([value]) }}
    {%- elif value is iterable and (value | length) > 0 -%}
        {{ return(value | list) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error("featurestore." ~ macro_name ~ ": argument '" ~ argument ~ "' must be a column name or a non-empty list of column names, got " ~ value) }}
{% endmacro %}


{% macro _rolling_window_value_columns(aggregates) %}
    {%- set columns = [] -%}
    {%- for aggregate in aggregates -%}
        {%- if aggregate.column is defined and aggregate.column and aggregate.column not in columns -%}
            {%- do columns.append(aggregate.column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}


{% macro _rolling_window_aggregate(aggregate, value_columns, keys) %}
    {%- set fns = ['count', 'sum', 'avg', 'min', 'max', 'days_since', 'last_at'] -%}
    {%- if aggregate.name is not defined or aggregate.fn is not defined -%}
        {{ exceptions.raise_compiler_error("featurestore.rolling_window: every aggregate needs a 'name' and an 'fn'; got " ~ aggregate) }}
    {%- endif -%}
    {%- if aggregate.fn not in fns -%}
        {{ exceptions.raise_compiler_error("featurestore.rolling_window: aggregate '" ~ aggregate.name ~ "' has fn '" ~ aggregate.fn ~ "'; use one of " ~ fns | join(', ')) }}
    {%- endif -%}
    {%- set needs_column = aggregate.fn in ['sum', 'avg', 'min', 'max'] -%}
    {%- if needs_column and not aggregate.column -%}
        {{ exceptions.raise_compiler_error("featurestore.rolling_window: aggregate '" ~ aggregate.name ~ "' (" ~ aggregate.fn ~ ") needs a 'column'") }}
    {%- endif -%}
    {%- set value = '_fs_value_' ~ (value_columns.index(aggregate.column) + 1) if aggregate.column else none -%}
    {%- if aggregate.window -%}
        {%- set frame = 'range between ' ~ featurestore.interval(aggregate.window) ~ ' preceding and current row' -%}
    {%- else -%}
        {%- set frame = 'range between unbounded preceding and current row' -%}
    {%- endif -%}
    {%- set over = 'over (partition by ' ~ (keys | join(', ')) ~ ' order by _fs_ts ' ~ frame ~ ')' -%}
    {%- set last_event = 'max(case when _fs_is_event = 1 then _fs_ts end) ' ~ over -%}
    {%- if aggregate.fn == 'count' and value -%}
        cast(count({{ value }}) {{ over }} as bigint)
    {%- elif aggregate.fn == 'count' -%}
        cast(coalesce(sum(_fs_is_event) {{ over }}, 0) as bigint)
    {%- elif aggregate.fn == 'sum' -%}
        coalesce(sum({{ value }}) {{ over }}, 0)
    {%- elif aggregate.fn == 'days_since' -%}
        {{ dbt.datediff(last_event, '_fs_ts', 'day') }}
    {%- elif aggregate.fn == 'last_at' -%}
        {{ last_event }}
    {%- else -%}
        {{ aggregate.fn }}({{ value }}) {{ over }}
    {%- endif -%}
{% endmacro %}
