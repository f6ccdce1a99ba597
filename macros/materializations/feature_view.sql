{#
  materialized='feature_view': the model's rows become a point-in-time snapshot table
  (see macros/snapshot.sql for the columns and rules).

  Full build: every row, versions ranked, intervals computed, swapped in like dbt's `table`.
  Incremental (the default once the table exists and the view has a created_timestamp): only
  rows created after the table's latest created timestamp are read; for the keys they touch,
  the rows from the last event before the earliest new event onwards are recomputed and
  replaced. The result equals a full build. `--full-refresh` rebuilds.

  Rows with a NULL key, event timestamp or created timestamp go to `<table>__rejected`, which
  the `featurestore.feature_view_keys_not_null` test checks.
#}

{% materialization feature_view, default %}
    {%- set spec = featurestore.feature_view_spec(model) -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set rejected = featurestore.rejected_relation(target_relation) -%}
    {%- set model_schema = get_column_schema_from_query(sql) if execute else [] -%}
    {%- set columns = featurestore._model_columns(spec, model_schema) -%}
    {%- set incremental = existing_relation is not none
                          and existing_relation.is_table
                          and spec['created_timestamp']
                          and not should_full_refresh()
                          and featurestore._is_snapshot_table(existing_relation, model_schema) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if incremental -%}
        {{ featurestore._feature_view_incremental(spec, sql, columns, target_relation, rejected) }}
    {%- else -%}
        {{ featurestore._feature_view_full(spec, sql, columns, existing_relation, target_relation, rejected) }}
    {%- endif -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ drop_relation_if_exists(make_backup_relation(target_relation, 'table')) }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro _model_columns(spec, model_schema) %}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set columns = model_schema | map(attribute='name') | list -%}
    {%- set lowered = columns | map('lower') | list -%}
    {%- for reserved in ['valid_from', 'valid_to', 'superseded_at'] if reserved in lowered -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ spec['where'] ~ " returns a column named '" ~ reserved ~ "', which the snapshot table adds itself; rename it") }}
    {%- endfor -%}
    {%- for required in spec['keys'] + [spec['event_timestamp']] + ([spec['created_timestamp']] if spec['created_timestamp'] else []) -%}
        {%- if required | lower not in lowered -%}
            {{ exceptions.raise_compiler_error("featurestore: " ~ spec['where'] ~ " must return column '" ~ required ~ "' (a join key or timestamp in its YAML); it returns: " ~ (columns | join(', '))) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}


{% macro _is_snapshot_table(relation, model_schema) %}
    {#- Incremental only onto a table built by feature_view from the same columns and types; a
        table from another materialization, or a model whose columns changed, is rebuilt. -#}
    {%- set existing = {} -%}
    {#- both sides read the same way, so type names compare (information_schema spells them differently) -#}
    {%- for column in get_column_schema_from_query('select * from ' ~ relation) -%}
        {%- do existing.update({column.name | lower: column.dtype | lower}) -%}
    {%- endfor -%}
    {%- if 'valid_to' not in existing or 'superseded_at' not in existing -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set model_columns = model_schema -%}
    {%- if (model_columns | length) + 3 != (existing | length) -%}
        {{ log("featurestore: columns of " ~ relation ~ " changed; rebuilding it", info=true) }}
        {{ return(false) }}
    {%- endif -%}
    {%- for column in model_columns -%}
        {%- if existing.get(column.name | lower) != column.dtype | lower -%}
            {{ log("featurestore: column " ~ column.name ~ " of " ~ relation ~ " changed type; rebuilding it", info=true) }}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{% endmacro %}


{% macro _feature_view_full(spec, sql, columns, existing_relation, target_relation, rejected) %}
    {%- set intermediate = make_intermediate_relation(target_relation) -%}
    {%- set backup = make_backup_relation(target_relation, 'table') -%}
    {{ drop_relation_if_exists(load_cached_relation(intermediate)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup)) }}
    {%- set source_sql = 'select ' ~ (columns | join(', ')) ~ ' from (' ~ sql ~ ') as _fs_model' -%}

    {% call statement('main') -%}
        {{ get_create_table_as_sql(False, intermediate,
            featurestore.snapshot_versions_sql(spec,
                source_sql ~ ' where ' ~ featurestore._row_is_valid(spec), columns)) }}
    {%- endcall %}

    {{ drop_relation_if_exists(adapter.get_relation(rejected.database, rejected.schema, rejected.identifier)) }}
    {% call statement('rejected') -%}
        {{ get_create_table_as_sql(False, rejected, source_sql ~ ' where not ' ~ featurestore._row_is_valid(spec)) }}
    {%- endcall %}

    {%- if existing_relation is not none -%}
        {{ adapter.rename_relation(existing_relation, backup) }}
    {%- endif -%}
    {{ adapter.rename_relation(intermediate, target_relation) }}
{% endmacro %}


{% macro _feature_view_incremental(spec, sql, columns, target_relation, rejected) %}
    {%- set created = spec['created_timestamp'] -%}
    {%- set column_list = columns | join(', ') -%}
    {%- set new_rows = make_temp_relation(target_relation, '__fs_new') -%}
    {%- set bounds = make_temp_relation(target_relation, '__fs_bounds') -%}
    {%- set recomputed = make_temp_relation(target_relation, '__fs_recomputed') -%}
    {#- (their names carry a timestamp, so none exists yet) -#}

    {%- if adapter.get_relation(rejected.database, rejected.schema, rejected.identifier) is none -%}
        {% call statement('create_rejected') -%}
            {{ get_create_table_as_sql(False, rejected, 'select ' ~ column_list ~ ' from (' ~ sql ~ ') as _fs_model where 1 = 0') }}
        {%- endcall %}
    {%- endif -%}

    {# 1. the batch: rows created after the latest created timestamp already placed or rejected
          (a scalar subquery, which DuckDB pushes into the scan as a filter) #}
    {%- set batch_sql -%}
        select {{ column_list }}
        from ({{ sql }}) as _fs_model
        where {{ created }} > (
            select coalesce(max(_fs_created), cast('0001-01-01 00:00:00' as {{ dbt.type_timestamp() }})) from (
                select max({{ created }}) as _fs_created from {{ target_relation }}
                union all
                select max({{ created }}) from {{ rejected }}
            ) as _fs_maxima
        )
    {%- endset -%}
    {% call statement('new_rows') -%}
        {{ get_create_table_as_sql(True, new_rows, batch_sql) }}
    {%- endcall %}

    {% call statement('rejected') -%}
        insert into {{ rejected }} ({{ column_list }})
        select {{ column_list }} from {{ new_rows }} where not {{ featurestore._row_is_valid(spec) }}
    {%- endcall %}

    {# 2. per key in the batch: its earliest and latest new event, the next existing event #}
    {% call statement('bounds') -%}
        {{ get_create_table_as_sql(True, bounds, featurestore.batch_bounds_sql(spec, target_relation, new_rows)) }}
    {%- endcall %}

    {# 3. recompute the changed rows of each touched key: old rows from the last event before
          the batch to the batch's latest event (and the next event, read only), plus the batch #}
    {%- set affected_sql -%}
        {{ featurestore.affected_rows_sql(spec, target_relation, bounds, columns) }}
        union all
        select {{ column_list }} from {{ new_rows }} where {{ featurestore._row_is_valid(spec) }}
    {%- endset -%}
    {%- set recomputed_sql -%}
        select {% for column in columns + ['valid_from', 'valid_to', 'superseded_at'] %}_fs_versions.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
        from ({{ featurestore.snapshot_versions_sql(spec, affected_sql, columns) }}) as _fs_versions
        inner join {{ bounds }} as _fs_bounds on {{ featurestore._keys_match(spec, '_fs_bounds', '_fs_versions') }}
        where _fs_versions.valid_from <= _fs_bounds._fs_max_new_event
    {%- endset -%}
    {% call statement('recomputed') -%}
        {{ get_create_table_as_sql(True, recomputed, recomputed_sql) }}
    {%- endcall %}

    {# 4. swap the affected rows #}
    {% call statement('delete_affected') -%}
        {{ featurestore.delete_affected_rows(spec, target_relation, bounds) }}
    {%- endcall %}
    {% call statement('main') -%}
        insert into {{ target_relation }} ({{ column_list }}, valid_from, valid_to, superseded_at)
        select {{ column_list }}, valid_from, valid_to, superseded_at from {{ recomputed }}
    {%- endcall %}
{% endmacro %}
