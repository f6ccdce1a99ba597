{#-
  Point-in-time join of an entity relation with feature views' snapshot tables: the one copy of
  this SQL, shared by the Python SDK (featurestore.sql renders this file with jinja2) and by
  dbt (this folder is one of the package's macro-paths; `featurestore.training_set` calls it).

  For each entity row (keys, t) and view: the winning row whose validity interval holds t,
  kept only if its event time is within the TTL (t - ttl <= valid_from <= t); otherwise NULL.
  With the knowledge guard: among versions created at or before t and not yet superseded at
  t, the one with the latest event time <= t (and within the TTL).

  Each view joins at most one row to an entity row (winning intervals tile time), so the views
  are chained as left joins straight onto the entity relation; only the knowledge guard needs a
  ranking step first.
-#}

{% macro point_in_time(dialect, entities, entity_columns, timestamp, views, match_columns=false, ordered=true, quote=none, event_columns=false, on_demand=none) %}
{#-
  dialect        'duckdb' | 'postgres' | 'spark' (databricks: as spark); any other stops
                 with an error where its SQL differs (the TTL interval)
  entities       relation (or parenthesised subquery) of the entity rows; it has _fs_row, the
                 input order, unless ordered is none
  entity_columns the entity columns to return, in order
  timestamp      the entity timestamp column
  views          [{alias, relation, join_keys: [(entity_column, view_column)], ttl_seconds,
                   strategy ('interval' | 'asof' | 'knowledge'), features: [(column, output_name)],
                   created, known_at}]  known_at: none, or an entity column with the time the
                   versions must have been known by (replay: the export's knowledge time)
  match_columns  add _fs_match_<alias> (true when the view matched) for the summary
  ordered        true: end with order by _fs_row, without returning it; false: return _fs_row
                 (the caller restores the order); none: no _fs_row at all (a dbt table)
  quote          quotes an identifier (the SDK's quote_identifier; in dbt, adapter.quote)
  event_columns  add _fs_event_<alias>: the event time of the matched row (NULL without a match)
  on_demand      none, or request-time features computed over the point-in-time rows:
                 {requests: [(entity column, type)], inputs: [(column, bare name)],
                  features: [(output, expression, type)], hidden: [columns to drop]}
                 (see _pit_on_demand)
-#}
{% if on_demand %}
{{ featurestore._pit_on_demand(dialect, entities, entity_columns, timestamp, views, match_columns, ordered, quote, event_columns, on_demand) }}
{% else %}
{% set ts = '_fs_entity.' ~ quote(timestamp) %}
{% set guarded = views | selectattr('strategy', 'equalto', 'knowledge') | list %}
{% if guarded %}
with
{% for view in guarded %}
{{ view.alias }} as (
    select _fs_row, valid_from{% for column, output in view.features %}, {{ quote(column) }}{% endfor %}

    from (
        select
            _fs_entity._fs_row,
            _fs_view.*,
            row_number() over (partition by _fs_entity._fs_row order by _fs_view.valid_from desc) as _fs_rank
        from {{ entities }} as _fs_entity
        inner join {{ view.relation }} as _fs_view
            on {{ featurestore._pit_keys_match(view, '_fs_view', quote) }}
            and _fs_view.valid_from <= {{ ts }}
            and {{ featurestore._pit_within_ttl(view, '_fs_view', ts, dialect) }}
{% set known = ('_fs_entity.' ~ quote(view.known_at)) if view.known_at is defined and view.known_at else ts %}
            and _fs_view.{{ quote(view.created) }} <= {{ known }}
            and (_fs_view.superseded_at is null or _fs_view.superseded_at > {{ known }})
    ) as _fs_candidates
    where _fs_rank = 1
){% if not loop.last %},{% endif %}

{% endfor %}
{% endif %}
{% set items = [] %}
{% for column in entity_columns %}
{% set _ = items.append('_fs_entity.' ~ quote(column)) %}
{% endfor %}
{% for view in views %}
{% for column, output in view.features %}
{% set _ = items.append(featurestore._pit_value(view, quote(column), ts, dialect) ~ ' as ' ~ quote(output)) %}
{% endfor %}
{% if match_columns %}
{% set _ = items.append(featurestore._pit_value(view, 'valid_from', ts, dialect) ~ ' is not null as ' ~ quote('_fs_match_' ~ view.alias)) %}
{% endif %}
{% if event_columns %}
{% set _ = items.append(featurestore._pit_value(view, 'valid_from', ts, dialect) ~ ' as ' ~ quote('_fs_event_' ~ view.alias)) %}
{% endif %}
{% endfor %}
{% if ordered is sameas false %}
{% set _ = items.append('_fs_entity._fs_row') %}
{% endif %}
select
    {{ items | join(',\n    ') }}
from {{ entities }} as _fs_entity
{% for view in views %}
{% if view.strategy == 'asof' %}
{# DuckDB ASOF over winning rows only: (key, valid_from) is unique there, so the match is
   deterministic even when multi-threaded #}
asof left join (
    select * from {{ view.relation }} where valid_to is null or valid_to > valid_from
) as {{ view.alias }}
    on {{ featurestore._pit_keys_match(view, view.alias, quote) }} and {{ ts }} >= {{ view.alias }}.valid_from
{% elif view.strategy == 'knowledge' %}
left join {{ view.alias }} on {{ view.alias }}._fs_row = _fs_entity._fs_row
{% else %}
{# interval join: equi-join on the keys, filtered by the validity interval and the TTL #}
left join {{ view.relation }} as {{ view.alias }}
    on {{ featurestore._pit_keys_match(view, view.alias, quote) }}
    and {{ view.alias }}.valid_from <= {{ ts }}
    and ({{ view.alias }}.valid_to is null or {{ view.alias }}.valid_to > {{ ts }})
    and {{ featurestore._pit_within_ttl(view, view.alias, ts, dialect) }}
{% endif %}
{% endfor %}
{% if ordered %}
order by _fs_entity._fs_row
{% endif %}
{% endif %}
{% endmacro %}


{% macro _pit_on_demand(dialect, entities, entity_columns, timestamp, views, match_columns, ordered, quote, event_columns, on_demand) %}
{#- On-demand features over the point-in-time rows. Every column of the point-in-time query is
    carried through as _fs_c<n>, so an expression sees only the request fields (the entity
    columns of their names, cast to their declared types) and the inputs (the hidden columns,
    by their features' bare names); the outer select restores the names, drops the hidden
    columns and casts each expression to its declared type. -#}
{% set names = [] %}
{% for column in entity_columns %}{% set _ = names.append(column) %}{% endfor %}
{% for view in views %}
{% for column, output in view.features %}{% set _ = names.append(output) %}{% endfor %}
{% if match_columns %}{% set _ = names.append('_fs_match_' ~ view.alias) %}{% endif %}
{% if event_columns %}{% set _ = names.append('_fs_event_' ~ view.alias) %}{% endif %}
{% endfor %}
{% if ordered is not none %}{% set _ = names.append('_fs_row') %}{% endif %}
{% set inner = featurestore.point_in_time(dialect, entities, entity_columns, timestamp, views, match_columns,
                                          none if ordered is none else false, quote, event_columns) %}
select
{% for name in names if name not in on_demand.hidden and not (name == '_fs_row' and ordered) %}
    _fs_scope._fs_c{{ names.index(name) }} as {{ quote(name) }},
{% endfor %}
{% for output, expression, type in on_demand.features %}
    cast(({{ expression }}) as {{ type }}) as {{ quote(output) }}{{ ',' if not loop.last }}
{% endfor %}
{% set scope = [] %}
{% for name in names %}{% set _ = scope.append('_fs_pit.' ~ quote(name) ~ ' as _fs_c' ~ loop.index0) %}{% endfor %}
{% for column, type in on_demand.requests %}{% set _ = scope.append('cast(_fs_pit.' ~ quote(column) ~ ' as ' ~ type ~ ') as ' ~ quote(column)) %}{% endfor %}
{% for column, bare in on_demand.inputs %}{% set _ = scope.append('_fs_pit.' ~ quote(column) ~ ' as ' ~ quote(bare)) %}{% endfor %}
from (
    select
        {{ scope | join(',\n        ') }}
    from (
{{ inner }}
    ) as _fs_pit
) as _fs_scope
{% if ordered %}
order by _fs_scope._fs_c{{ names.index('_fs_row') }}
{% endif %}
{% endmacro %}


{% macro _pit_within_ttl(view, alias, ts, dialect) -%}
{#- The TTL condition: the row's event time is at most ttl_seconds before the entity time. -#}
{% if view.ttl_seconds is not none -%}
{{ alias }}.valid_from >= {{ ts }} - {{ featurestore._pit_seconds(view.ttl_seconds, dialect) }}
{%- else %}true{% endif %}
{%- endmacro %}


{% macro _pit_seconds(seconds, dialect) -%}
{#- An interval of `seconds` (a whole number) in the engine's SQL; an engine not listed here
    stops with an error rather than getting another engine's SQL. -#}
{% if dialect == 'duckdb' -%}
to_seconds({{ seconds }})
{%- elif dialect == 'postgres' -%}
make_interval(secs => {{ seconds }})
{%- elif dialect in ('spark', 'databricks') -%}
make_dt_interval(0, 0, 0, {{ seconds }})
{%- else -%}
{{ exceptions.raise_compiler_error("featurestore.point_in_time: no interval SQL for the '" ~ dialect ~ "' engine; add it to _pit_seconds in point_in_time.sql") }}
{%- endif %}
{%- endmacro %}


{% macro _pit_keys_match(view, alias, quote) -%}
{#- The view's join keys equal the entity row's. -#}
{% for entity_key, view_key in view.join_keys %}{{ alias }}.{{ quote(view_key) }} = _fs_entity.{{ quote(entity_key) }}{% if not loop.last %} and {% endif %}{% endfor %}
{%- endmacro %}


{% macro _pit_value(view, column, ts, dialect) -%}
{#- A feature's value; the ASOF join matches rows outside the TTL too, so it is checked here. -#}
{% if view.strategy == 'asof' and view.ttl_seconds is not none -%}
case when {{ featurestore._pit_within_ttl(view, view.alias, ts, dialect) }} then {{ view.alias }}.{{ column }} end
{%- else -%}
{{ view.alias }}.{{ column }}
{%- endif %}
{%- endmacro %}
