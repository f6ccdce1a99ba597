{#
  Point-in-time snapshot tables.

  A feature view's snapshot table keeps every row the model produced, with three columns added:
    valid_from     the row's event timestamp
    valid_to       the next later event timestamp of the same key (NULL for the current row);
                   a superseded version gets valid_to = valid_from, an empty interval
    superseded_at  the created timestamp of the version that replaced this one (NULL if none)

  Versions: rows with the same key and event timestamp are versions of one value. The winner is
  the row with the latest created timestamp; among equal created timestamps, the row whose
  feature values are greatest, compared column by column in the model's column order with
  NULLs lowest. Exact duplicates are indistinguishable, so any of them may win.

  Reading it:
    latest knowledge   valid_from <= t and (valid_to is null or t < valid_to)
    as known at time t also created_at <= t and (superseded_at is null or superseded_at > t),
                       then the greatest valid_from (one visible version per event time)
    current rows       valid_to is null
#}

{% macro feature_view_spec(node) %}
    {{ return(adapter.dispatch('feature_view_spec', 'featurestore')(node)) }}
{% endmacro %}

{% macro default__feature_view_spec(node) %}
    {#- Keys and timestamps of a feature-view model, from its YAML metadata and the entities
        declared on other models (the same rules as the Python registry). -#}
    {%- set meta = (node.config.meta or {}).get('featurestore') or {} -%}
    {%- set where = "model '" ~ node.name ~ "' (" ~ (node.patch_path or node.original_file_path) ~ ")" -%}
    {%- if not meta.get('event_timestamp') -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " is materialized as a feature_view but has no `event_timestamp` under config.meta.featurestore") }}
    {%- endif -%}
    {%- if meta.get('ttl') not in (none, '') -%}
        {%- do featurestore._parse_duration(meta.get('ttl'), where ~ " ttl") -%}  {#- (validate's bad-ttl, before anything is built) -#}
    {%- endif -%}
    {%- set entity_names = meta.get('entities') or [] -%}
    {%- if entity_names is string or (entity_names | length) == 0 -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " needs `entities: [<entity name>, ...]` under config.meta.featurestore") }}
    {%- endif -%}
    {%- set declared = featurestore._declared_entities() -%}
    {%- set keys = [] -%}
    {%- for name in entity_names -%}
        {%- if name not in declared -%}
            {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " uses entity '" ~ name ~ "', which no model declares; declared: " ~ (declared.keys() | list | join(', '))) }}
        {%- endif -%}
        {%- set declaration = declared[name][0] -%}
        {%- if declared[name] | length > 1 -%}
            {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " uses entity '" ~ name ~ "', which is declared on more than one model (" ~ (declared[name] | map(attribute='declared_in') | join(', ')) ~ "); declare each entity once") }}
        {%- endif -%}
        {%- if declaration.join_keys | length == 0 -%}
            {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " uses entity '" ~ name ~ "', which has no join_keys (declared on model '" ~ declaration.declared_in ~ "')") }}
        {%- endif -%}
        {%- for key in declaration.join_keys if key not in keys -%}
            {%- do keys.append(key) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return({
        'name': node.name,
        'keys': keys,
        'event_timestamp': meta.get('event_timestamp'),
        'created_timestamp': meta.get('created_timestamp'),
        'where': where,
    }) }}
{% endmacro %}


{% macro _declared_entities() %}
    {#- {name: [{name, join_keys, description, declared_in}, ...]} of the entities the project's
        models declare under config.meta.featurestore.entities, every declaration in the graph's
        order (the registry takes the first; a view using an entity declared twice is refused). -#}
    {%- set declared = {} -%}
    {%- for other in graph.nodes.values() if other.resource_type == 'model' -%}
        {%- for entity in (((other.config.meta or {}).get('featurestore') or {}).get('entities') or []) if entity is mapping -%}
            {#- `join_keys: customer_id` is one key, as in the registry -#}
            {%- set join_keys = [entity.join_keys] if entity.join_keys is string else (entity.join_keys or []) -%}
            {%- do declared.setdefault(entity.name, []).append({'name': entity.name, 'join_keys': join_keys,
                                                                'description': entity.get('description'),
                                                                'declared_in': other.name}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(declared) }}
{% endmacro %}


{% macro snapshot_versions_sql(spec, rows_sql, columns, carried=[]) %}
    {{ return(adapter.dispatch('snapshot_versions_sql', 'featurestore')(spec, rows_sql, columns, carried)) }}
{% endmacro %}

{% macro _q(name) -%}
    {#- An identifier quoted by the adapter: reserved words (`order`) and mixed case work. -#}
    {{- adapter.quote(name) -}}
{%- endmacro %}


{% macro _q_list(names, prefix='') -%}
    {%- set quoted = [] -%}
    {%- for name in names -%}
        {%- do quoted.append(prefix ~ featurestore._q(name)) -%}
    {%- endfor -%}
    {{- quoted | join(', ') -}}
{%- endmacro %}


{% macro default__snapshot_versions_sql(spec, rows_sql, columns, carried=[]) %}
    {#- rows_sql: valid rows (keys and event timestamp not null) with exactly `columns` (and the
        columns named in `carried`, our own, passed through without taking part in the order).
        All rows of a key from some event time onwards must be present: valid_to of the
        earliest is computed from the next ones.
        One window, one sort: per key, rows in event order and, within an event time, from the
        losing version to the winning one. The next row is then either a better version of the
        same event (so this row is superseded: valid_to = valid_from, superseded_at = its created
        time) or the next event (so this row is the winner: valid_to = that event time). -#}
    {%- set keys = featurestore._q_list(spec['keys']) -%}
    {%- set event = featurestore._q(spec['event_timestamp']) -%}
    {%- set created = featurestore._q(spec['created_timestamp']) if spec['created_timestamp'] else none -%}
    {%- set window = 'over (partition by ' ~ keys ~ ' order by ' ~ event ~ ', ' ~ featurestore._version_order(spec, columns) ~ ')' -%}
select
    {%- for column in columns %}
    {{ featurestore._q(column) }},
    {%- endfor %}
    {%- for column in carried %}
    {{ column }},
    {%- endfor %}
    {{ event }} as valid_from,
    lead({{ event }}) {{ window }} as valid_to,
    {%- if created %}
    case when lead({{ event }}) {{ window }} = {{ event }} then lead({{ created }}) {{ window }} end as superseded_at
    {%- else %}
    cast(null as {{ dbt.type_timestamp() }}) as superseded_at
    {%- endif %}
from ({{ rows_sql }}) as _fs_rows
{% endmacro %}


{% macro _version_order(spec, columns) %}
    {#- Versions of one event from worst to best: created time, then feature values in column
        order, NULL lowest. The best (last) wins. -#}
    {%- set parts = [] -%}
    {%- if spec['created_timestamp'] -%}
        {%- do parts.append(featurestore._q(spec['created_timestamp']) ~ ' asc nulls first') -%}
    {%- endif -%}
    {%- for column in columns if column not in spec['keys'] and column not in [spec['event_timestamp'], spec['created_timestamp']] -%}
        {%- do parts.append(featurestore._q(column) ~ ' asc nulls first') -%}
    {%- endfor -%}
    {%- if parts | length == 0 -%}
        {%- do parts.append(featurestore._q(spec['event_timestamp'])) -%}
    {%- endif -%}
    {{ return(parts | join(', ')) }}
{% endmacro %}


{% macro _row_is_valid(spec, prefix='') %}
    {%- set checks = [] -%}
    {%- for key in spec['keys'] -%}
        {%- do checks.append(prefix ~ featurestore._q(key) ~ ' is not null') -%}
    {%- endfor -%}
    {%- do checks.append(prefix ~ featurestore._q(spec['event_timestamp']) ~ ' is not null') -%}
    {%- if spec['created_timestamp'] -%}
        {%- do checks.append(prefix ~ featurestore._q(spec['created_timestamp']) ~ ' is not null') -%}
        {%- if spec.get('clock') is not none -%}
            {#- a row created after the build's clock would move the watermark into the future -#}
            {%- do checks.append(prefix ~ featurestore._q(spec['created_timestamp']) ~ ' <= ' ~ spec['clock']) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return('(' ~ (checks | join(' and ')) ~ ')') }}
{% endmacro %}


{% macro current_rows(relation) %}
    {#- The rows the online store serves: the latest version of every key. -#}
    (select * from {{ relation }} where valid_to is null)
{% endmacro %}


{% macro rejected_relation(relation) %}
    {#- Where a feature view keeps rows it cannot place, with the reason (`_fs_reason`): a NULL
        key, event or created timestamp, or a created timestamp after the build's clock. -#}
    {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
                                  identifier=relation.identifier ~ '__rejected', type='table')) }}
{% endmacro %}


{% macro _is_affected(spec, table_alias, for_reading) %}
    {#- Can a batch change this snapshot row? `_fs_bounds` holds, per key of the batch, its
        earliest and latest new event. Changed: rows from the last event before the earliest new
        one up to the latest new one. Read (for_reading): every row of the key from the last
        event before the earliest new one onwards, of which affected_rows_sql keeps the changed
        ones and the next event after them (no separate read of the table for it). -#}
    ({{ table_alias }}.valid_from >= _fs_bounds._fs_min_new_event
     or {{ table_alias }}.valid_to is null
     or {{ table_alias }}.valid_to >= _fs_bounds._fs_min_new_event)
    {%- if not for_reading %}
    and {{ table_alias }}.valid_from <= _fs_bounds._fs_max_new_event
    {%- endif %}
{%- endmacro %}


{% macro _keys_match(spec, left, right) -%}
    {%- for key in spec['keys'] %}{{ left }}.{{ featurestore._q(key) }} = {{ right }}.{{ featurestore._q(key) }}{% if not loop.last %} and {% endif %}{% endfor -%}
{%- endmacro %}


{% macro batch_bounds_sql(spec, new_rows_relation) %}
    {#- Per key of the batch: its earliest and latest new event (from the batch alone: the
        snapshot table is read once, by affected_rows_sql). -#}
    {%- set keys = featurestore._q_list(spec['keys']) -%}
    select {{ keys }},
        min({{ featurestore._q(spec['event_timestamp']) }}) as _fs_min_new_event,
        max({{ featurestore._q(spec['event_timestamp']) }}) as _fs_max_new_event
    from {{ new_rows_relation }}
    where {{ featurestore._row_is_valid(spec) }}
    group by {{ keys }}
{% endmacro %}


{% macro affected_rows_sql(spec, target_relation, bounds_relation, columns, row_id=none) %}
    {#- The rows of the snapshot an incremental batch needs to read (bounds: one row per key),
        in one read of the table: the changed rows and, per key, the first event after the
        batch's latest (which gives the last changed row its valid_to), found among the rows
        read (a key's later history is not versioned again). With row_id (an expression over
        `_fs_old`, see snapshot_row_id), each row's id as _fs_rowid. -#}
    select {{ featurestore._q_list(columns, '_fs_read.') }}{% if row_id %}, _fs_read._fs_rowid{% endif %}
    from (
        select {{ featurestore._q_list(columns, '_fs_old.') }}{% if row_id %}, {{ row_id }} as _fs_rowid{% endif %},
            _fs_old.valid_from as _fs_valid_from,
            _fs_bounds._fs_max_new_event,
            min(case when _fs_old.valid_from > _fs_bounds._fs_max_new_event then _fs_old.valid_from end)
                over (partition by {{ featurestore._q_list(spec['keys'], '_fs_old.') }}) as _fs_next_event
        from {{ target_relation }} as _fs_old
        inner join {{ bounds_relation }} as _fs_bounds on {{ featurestore._keys_match(spec, '_fs_bounds', '_fs_old') }}
        where {{ featurestore._is_affected(spec, '_fs_old', for_reading=true) }}
    ) as _fs_read
    where _fs_read._fs_valid_from <= _fs_read._fs_max_new_event
       or _fs_read._fs_valid_from = _fs_read._fs_next_event
{% endmacro %}


{% macro snapshot_row_id(table_alias, columns) %}
    {#- An id the engine gives each row of a table, stable within the run's transaction, as an
        expression over `table_alias`; none where there is none to use. Dispatches. -#}
    {{ return(adapter.dispatch('snapshot_row_id', 'featurestore')(table_alias, columns)) }}
{% endmacro %}

{% macro default__snapshot_row_id(table_alias, columns) %}{{ return(none) }}{% endmacro %}

{# DuckDB: rowid. The incremental run is one transaction, so the ids read with the touched rows
   are those the delete finds (swap_affected_rows deletes by them: a scan of row ids only). None
   where that does not hold: with dbt-duckdb's `disable_transactions` each statement commits on
   its own (a checkpoint in between may compact row groups and move row ids), on MotherDuck
   (untested here), and when a model column named rowid would hide it (or one named _fs_rowid
   collide with ours). #}
{% macro duckdb__snapshot_row_id(table_alias, columns) %}
    {%- set lowered = columns | map('lower') | list -%}
    {%- if 'rowid' in lowered or '_fs_rowid' in lowered or adapter.disable_transactions() or adapter.is_motherduck() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(table_alias ~ '.rowid') }}
{% endmacro %}


{% macro delete_affected_rows(spec, target_relation, bounds_relation) %}
    {{ return(adapter.dispatch('delete_affected_rows', 'featurestore')(spec, target_relation, bounds_relation)) }}
{% endmacro %}

{# ANSI: a correlated EXISTS. Correct everywhere, but DuckDB runs it 20x slower than a join. #}
{% macro default__delete_affected_rows(spec, target_relation, bounds_relation) %}
    delete from {{ target_relation }}
    where exists (
        select 1 from {{ bounds_relation }} as _fs_bounds
        where {{ featurestore._keys_match(spec, '_fs_bounds', target_relation) }}
          and {{ featurestore._is_affected(spec, target_relation, for_reading=false) }}
    )
{% endmacro %}

{# DuckDB and PostgreSQL: DELETE ... USING plans a hash join. (PostgreSQL's body: DuckDB's own
   incremental runs delete by row id instead, see duckdb__swap_affected_rows.) #}
{% macro duckdb__delete_affected_rows(spec, target_relation, bounds_relation) %}
    delete from {{ target_relation }}
    using {{ bounds_relation }} as _fs_bounds
    where {{ featurestore._keys_match(spec, '_fs_bounds', target_relation) }}
      and {{ featurestore._is_affected(spec, target_relation, for_reading=false) }}
{% endmacro %}

{% macro postgres__delete_affected_rows(spec, target_relation, bounds_relation) %}
    {{ featurestore.duckdb__delete_affected_rows(spec, target_relation, bounds_relation) }}
{% endmacro %}
