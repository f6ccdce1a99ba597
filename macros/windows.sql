{#
  rolling_window: leakage-free windowed aggregates per entity.

  For every point (key, t) the value uses only events of the same key inside the window ending
  at t: by default `closed='right'`, t - window < event time <= t, pandas' `rolling('7D')`
  semantics (a 1d window on midnight-stamped daily data holds one day); `closed='both'` also
  counts events exactly at t - window. Points are either the events themselves (one point per
  distinct key and time) or the rows of a `spine` relation, e.g. one row per customer and day.

  aggregates: a list of dicts {name, fn, column, window}
    fn: count (rows, or non-null `column`), sum, avg, min, max, days_since (days since the
        latest event in the window, counted in calendar-day boundaries), last_at (the
        latest event time in the window)
    window: a duration ('7d', '12h', ...) or none for all history up to t.

  load_time_column: a column of `source` holding when each event was loaded. The result gets a
  column of that name: the latest load time among the events in the row's widest window, and
  never earlier than t. Used as the feature view's created_timestamp, a late or corrected
  event gives exactly the rows whose windows hold it a new created time, so incremental
  builds, training sets and syncs pick them up.
#}

{% macro rolling_window(source, partition_by, timestamp_column, aggregates, spine=none, closed='right', load_time_column=none) %}
    {{ return(adapter.dispatch('rolling_window', 'featurestore')(source, partition_by, timestamp_column, aggregates, spine, closed, load_time_column)) }}
{% endmacro %}

{% macro default__rolling_window(source, partition_by, timestamp_column, aggregates, spine=none, closed='right', load_time_column=none) %}
    {%- set keys = featurestore._as_list(partition_by, 'rolling_window', 'partition_by') -%}
    {%- if closed not in ['right', 'both'] -%}
        {{ exceptions.raise_compiler_error("featurestore.rolling_window: closed must be 'right' (t - window < event <= t, the default) or 'both' (t - window <= event <= t), not '" ~ closed ~ "'") }}
    {%- endif -%}
    {%- set value_columns = featurestore._rolling_window_value_columns(aggregates) -%}
    {%- set key_list = featurestore._q_list(keys) -%}
    {%- set ts = featurestore._q(timestamp_column) -%}
with _fs_events as (
    select
        {{ key_list }},
        {{ ts }} as _fs_ts,
        {%- for column in value_columns %}
        {{ featurestore._q(column) }} as _fs_value_{{ loop.index }},
        {%- endfor %}
        {%- if load_time_column %}
        {{ featurestore._q(load_time_column) }} as _fs_load,
        {%- endif %}
        1 as _fs_is_event
    from {{ source }} as _fs_source
    where {{ ts }} is not null
),

_fs_points as (
    {%- if spine is none %}
    select distinct {{ key_list }}, _fs_ts from _fs_events
    {%- else %}
    select distinct {{ key_list }}, {{ ts }} as _fs_ts from {{ spine }} as _fs_spine
    {%- endif %}
),

_fs_unioned as (
    select {{ key_list }}, _fs_ts,
        {%- for column in value_columns %} _fs_value_{{ loop.index }},{% endfor %}
        {%- if load_time_column %} _fs_load,{% endif %}
        _fs_is_event, 0 as _fs_is_point
    from _fs_events
    union all
    select {{ key_list }}, _fs_ts,
        {%- for column in value_columns %} null,{% endfor %}
        {%- if load_time_column %} null,{% endif %}
        0, 1
    from _fs_points
),

_fs_windowed as (
    select
        {{ key_list }},
        _fs_ts,
        _fs_is_point
        {%- for aggregate in aggregates %},
        {{ featurestore._rolling_window_aggregate(aggregate, value_columns, keys, closed) }} as {{ featurestore._q(aggregate.name) }}
        {%- endfor %}
        {%- if load_time_column %},
        {{ featurestore._rolling_window_load_time(aggregates, keys, closed) }} as _fs_load
        {%- endif %}
    from _fs_unioned
)

select
    {{ key_list }},
    _fs_ts as {{ ts }}
    {%- for aggregate in aggregates %},
    {{ featurestore._q(aggregate.name) }}
    {%- endfor %}
    {%- if load_time_column %},
    _fs_load as {{ featurestore._q(load_time_column) }}
    {%- endif %}
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


{% macro _rolling_window_frame(window, closed) %}
    {#- The frame of a window ending at the current row. `closed='right'` excludes the event at
        exactly t - window by starting the frame one microsecond later (timestamps here have
        microsecond resolution, so nothing else can fall in between). -#}
    {%- if not window -%}
        {{ return('range between unbounded preceding and current row') }}
    {%- elif closed == 'both' -%}
        {{ return('range between ' ~ featurestore.interval(window) ~ ' preceding and current row') }}
    {%- endif -%}
    {%- set width = featurestore._duration_microseconds(window, 'rolling_window') - 1 -%}
    {{ return('range between ' ~ featurestore.interval_microseconds(width) ~ ' preceding and current row') }}
{% endmacro %}


{% macro _rolling_window_aggregate(aggregate, value_columns, keys, closed) %}
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
    {%- set frame = featurestore._rolling_window_frame(aggregate.window, closed) -%}
    {%- set over = 'over (partition by ' ~ featurestore._q_list(keys) ~ ' order by _fs_ts ' ~ frame ~ ')' -%}
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


{% macro _rolling_window_load_time(aggregates, keys, closed) %}
    {#- The latest load time in the widest window of the aggregates (all history if any has no
        window), and never earlier than the point itself: a row as of t cannot be known before t. -#}
    {%- set ns = namespace(widest=none, unbounded=false, micros=-1) -%}
    {%- for aggregate in aggregates -%}
        {%- if not aggregate.window -%}
            {%- set ns.unbounded = true -%}
        {%- else -%}
            {%- set micros = featurestore._duration_microseconds(aggregate.window, 'rolling_window') -%}
            {%- if micros > ns.micros -%}
                {%- set ns.micros = micros -%}
                {%- set ns.widest = aggregate.window -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set frame = featurestore._rolling_window_frame(none if ns.unbounded else ns.widest, closed) -%}
    {%- set over = 'over (partition by ' ~ featurestore._q_list(keys) ~ ' order by _fs_ts ' ~ frame ~ ')' -%}
    greatest(coalesce(max(_fs_load) {{ over }}, _fs_ts), _fs_ts)
{% endmacro %}
