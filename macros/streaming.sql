{#
  stream_windows: the body of a streaming view's model — windowed aggregates over the raw events
  pushed to it, by the rule the online store serves (featurestore_py/featurestore/streaming.py):

    the value at time t of an aggregate over window W counts the events of the key with
    t - W < event time <= t that were pushed at or before t;
    no event in the longest window: every aggregate NULL; else count and sum of an empty
    window are 0, avg/min/max NULL; a sum of magnitude 2^63 or more is NULL.

  Everything comes from the model's YAML (`config: meta: featurestore: stream:`): the event
  columns, the event id, the aggregates. The events are the landing area's files (one per push;
  DuckDB reads them, as `pushed_rows` does), one copy per key, event time and event id (the first
  pushed). The value only changes when an event starts to count (its event time, or its push if
  later) or leaves a window (event time + window), so the rows are those change points, up to the
  build's clock: a training set's point-in-time join at any t then finds the value at t. Each
  row's created timestamp is its own time: what it says was known then.
#}

{% macro stream_windows() %}
    {{ return(adapter.dispatch('stream_windows', 'featurestore')()) }}
{% endmacro %}


{% macro default__stream_windows() %}
    {#- At parse time the model's YAML is not applied yet: nothing to read. -#}
    {%- if not execute -%}{{ return('select 1 as _fs_parsing') }}{%- endif -%}
    {%- set spec = featurestore.feature_view_spec(model) -%}
    {%- set meta = (model.config.meta or {}).get('featurestore') or {} -%}
    {%- set stream = meta.get('stream') -%}
    {%- if stream is not mapping or not stream.get('aggregates') -%}
        {{ exceptions.raise_compiler_error("featurestore.stream_windows: model '" ~ model.name ~ "' needs `stream: {aggregates: [...]}` under config.meta.featurestore") }}
    {%- endif -%}
    {%- if not spec.created_timestamp -%}
        {{ exceptions.raise_compiler_error("featurestore.stream_windows: model '" ~ model.name ~ "' needs a `created_timestamp` (the push time of its events)") }}
    {%- endif -%}
    {%- set event_id = stream.get('event_id') or 'event_id' -%}
    {%- set events = stream.get('events') or {} -%}
    {%- set columns = [] -%}
    {%- for key in spec['keys'] -%}
        {%- do columns.append({'name': key, 'data_type': model.columns[key].data_type}) -%}
    {%- endfor -%}
    {%- do columns.append({'name': spec.event_timestamp, 'data_type': 'timestamp'}) -%}
    {%- do columns.append({'name': event_id, 'data_type': 'varchar'}) -%}
    {%- for name, data_type in events.items() -%}
        {%- do columns.append({'name': name, 'data_type': data_type}) -%}
    {%- endfor -%}
    {%- do columns.append({'name': spec.created_timestamp, 'data_type': 'timestamp'}) -%}
    {%- set windows = [] -%}
    {%- set ns = namespace(longest=0) -%}
    {%- for aggregate in stream.aggregates -%}
        {%- set micros = featurestore._duration_microseconds(aggregate.window, 'stream_windows') -%}
        {%- if micros not in windows -%}{%- do windows.append(micros) -%}{%- endif -%}
        {%- if micros > ns.longest -%}{%- set ns.longest = micros -%}{%- endif -%}
    {%- endfor -%}
    {%- set keys = featurestore._q_list(spec['keys']) -%}
    {%- set ts = featurestore._q(spec.event_timestamp) -%}
with _fs_landed as (
    select {% for column in columns %}{{ featurestore._q(column.name) }}{{ ', ' if not loop.last }}{% endfor %},
        row_number() over (partition by {{ keys }}, {{ ts }}, {{ featurestore._q(event_id) }}
                           order by {{ featurestore._q(spec.created_timestamp) }}) as _fs_copy
    from {{ featurestore.landed_rows(model.name, columns) }} as _fs_files
    where {{ ts }} is not null
),

_fs_events as (
    select {{ keys }}, {{ ts }} as _fs_time, {{ featurestore._q(spec.created_timestamp) }} as _fs_known
        {%- for name in events %}, {{ featurestore._q(name) }}{% endfor %},
        case when {{ featurestore._q(spec.created_timestamp) }} > {{ ts }} then {{ featurestore._q(spec.created_timestamp) }} else {{ ts }} end as _fs_counts_from
    from _fs_landed
    where _fs_copy = 1
),

_fs_points as (
    select {{ keys }}, _fs_counts_from as _fs_at from _fs_events
    {%- for micros in windows %}
    union
    select {{ keys }}, _fs_time + {{ featurestore.interval_microseconds(micros) }} from _fs_events
    where _fs_time + {{ featurestore.interval_microseconds(micros) }} > _fs_counts_from
    {%- endfor %}
),

_fs_windowed as (
    select {% for key in spec['keys'] %}_fs_p.{{ featurestore._q(key) }}, {% endfor %}_fs_p._fs_at,
        count(_fs_e._fs_time) as _fs_in_longest
        {%- for aggregate in stream.aggregates %},
        {{ featurestore._stream_aggregate(aggregate) }} as {{ featurestore._q(aggregate.name) }}
        {%- endfor %}
    from _fs_points as _fs_p
    left join _fs_events as _fs_e
        on {% for key in spec['keys'] %}_fs_e.{{ featurestore._q(key) }} = _fs_p.{{ featurestore._q(key) }} and {% endfor %}
           _fs_e._fs_time <= _fs_p._fs_at
           and _fs_e._fs_time > _fs_p._fs_at - {{ featurestore.interval_microseconds(ns.longest) }}
           and _fs_e._fs_known <= _fs_p._fs_at
    where _fs_p._fs_at <= {{ featurestore.utc_now() }}
    group by {% for key in spec['keys'] %}_fs_p.{{ featurestore._q(key) }}, {% endfor %}_fs_p._fs_at
)

select {{ keys }}, _fs_at as {{ ts }}
    {%- for aggregate in stream.aggregates %},
    case when _fs_in_longest > 0 then cast({{ featurestore._q(aggregate.name) }} as {{ featurestore.column_type(model.columns[aggregate.name].data_type) }}) end as {{ featurestore._q(aggregate.name) }}
    {%- endfor %},
    _fs_at as {{ featurestore._q(spec.created_timestamp) }}
from _fs_windowed
{% endmacro %}


{% macro _stream_aggregate(aggregate) %}
    {#- One aggregate over the joined events inside its own window (the join keeps the longest). -#}
    {%- set micros = featurestore._duration_microseconds(aggregate.window, 'stream_windows') -%}
    {%- set inside = '_fs_e._fs_time > _fs_p._fs_at - ' ~ featurestore.interval_microseconds(micros) -%}
    {%- if aggregate.fn in ['sum', 'avg', 'min', 'max'] and not aggregate.column -%}
        {{ exceptions.raise_compiler_error("featurestore.stream_windows: aggregate '" ~ aggregate.name ~ "' (" ~ aggregate.fn ~ ") needs a 'column' of the events") }}
    {%- endif -%}
    {%- set value = '_fs_e.' ~ featurestore._q(aggregate.column) if aggregate.column else '1' -%}
    {%- set total = 'coalesce(sum(case when ' ~ inside ~ ' then ' ~ value ~ ' end), 0)' -%}
    {%- if aggregate.fn == 'count' -%}
        count(case when {{ inside }} then {{ value }} end)
    {%- elif aggregate.fn == 'sum' -%}
        {#- a sum of magnitude 2^63 or more is NULL, as online (streaming.SUM_LIMIT): no bigint holds it -#}
        case when abs({{ total }}) < 9223372036854775808 then {{ total }} end
    {%- elif aggregate.fn in ['avg', 'min', 'max'] -%}
        {{ aggregate.fn }}(case when {{ inside }} then {{ value }} end)
    {%- else -%}
        {{ exceptions.raise_compiler_error("featurestore.stream_windows: aggregate '" ~ aggregate.name ~ "' has fn '" ~ aggregate.fn ~ "'; use count, sum, avg, min or max") }}
    {%- endif -%}
{% endmacro %}


{% macro utc_now() %}
    {#- The build's clock as a timestamp without zone, in UTC. -#}
    {{ return(adapter.dispatch('utc_now', 'featurestore')()) }}
{% endmacro %}

{% macro default__utc_now() %}(current_timestamp at time zone 'UTC'){% endmacro %}

{% macro spark__utc_now() %}to_utc_timestamp(current_timestamp(), current_timezone()){% endmacro %}
