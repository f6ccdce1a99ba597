{#
  materialized='feature_view': the model's rows become a point-in-time snapshot table
  (see macros/snapshot.sql for the columns and rules).

  Full build: every row, versions ranked, intervals computed, swapped in like dbt's `table`
  (backup of whatever relation was there, of its own type; grants; docs; hooks).
  Incremental (once the table exists, the view has a created_timestamp, is not a streaming view
  and nothing changed):
  only rows created after the table's latest created timestamp are read; for the keys they
  touch, the snapshot's rows from the last event before the earliest new event onwards are read
  once, and those up to the latest new event are recomputed and replaced (on DuckDB deleted by
  the row ids read with them). The result equals a full build. `--full-refresh` rebuilds. An
  engine may find a batch cheaper to rebuild than to apply (Spark: `snapshot_rebuild_share`, see
  batch_prefers_rebuild): the run then rebuilds as `--full-refresh` would, and says so.

  What the rows were computed from is recorded in `<table>__build` (a hash of the compiled SQL
  and the build's id). When the definition or the columns change, the next run rebuilds the
  table from scratch and says why; with `on_schema_change: fail` it stops instead and says
  what to run. (`ignore` and `append_new_columns` would keep rows computed by the old SQL, so
  they are refused; a dbt `contract` is refused too: the snapshot table adds columns to the
  model's.)

  Rows with a NULL key, event timestamp or created timestamp, and rows created after the build's
  own clock (a created timestamp in the future would move the incremental watermark past every
  row created later), go to `<table>__rejected` with the reason in `_fs_reason`; the build warns
  of the latter, and the `featurestore.feature_view_keys_not_null` test fails while any are
  there. A row set aside for its future created timestamp is placed by the first build whose
  clock has passed it. (Streaming views are exempt: their rows are computed up to the build's
  clock and rebuilt from the landed events every run.)
#}

{% materialization feature_view, default %}
    {%- set on_schema_change = featurestore._feature_view_config_checks(model) -%}
    {%- set spec = featurestore.feature_view_spec(model) -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set rejected = featurestore.rejected_relation(target_relation) -%}
    {%- set build_record = featurestore.build_relation(target_relation) -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set model_schema = featurestore.query_columns(sql) if execute else [] -%}
    {%- set columns = featurestore._model_columns(spec, model_schema, model) -%}
    {%- set spec = featurestore._resolve_spec(spec, columns) -%}
    {%- do spec.update({'clock': featurestore._build_clock(spec)}) -%}
    {#- (the rejected table's layout is part of the definition: a table from before _fs_reason is rebuilt) -#}
    {%- set definition = local_md5(sql ~ featurestore.snapshot_layout() ~ featurestore._rejected_layout()) -%}
    {%- set incremental = featurestore._can_run_incrementally(spec, existing_relation, build_record, model_schema,
                                                               definition, on_schema_change) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if incremental -%}
        {#- (false when the batch is better served by a rebuild: see batch_prefers_rebuild) -#}
        {%- set incremental = featurestore._feature_view_incremental(spec, sql, columns, target_relation, rejected) -%}
    {%- endif -%}
    {%- if not incremental -%}
        {{ featurestore._feature_view_full(spec, sql, columns, existing_relation, target_relation, rejected) }}
    {%- endif -%}
    {{ featurestore._report_future_rows(spec, rejected) }}
    {{ featurestore._record_build(build_record, definition, full=not incremental) }}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- set should_revoke = should_revoke(existing_relation, full_refresh_mode=not incremental) -%}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) -%}
    {%- do apply_grants(rejected, grant_config, should_revoke=should_revoke) -%}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {%- if existing_relation is not none and not incremental -%}
        {{ drop_relation_if_exists(make_backup_relation(target_relation, existing_relation.type)) }}
    {%- endif -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro _feature_view_config_checks(model) %}
    {#- The parts of dbt's model contract a snapshot table cannot honour are refused, by name. -#}
    {%- set where = "model '" ~ model.name ~ "' (" ~ model.original_file_path ~ ")" -%}
    {%- set contract = config.get('contract') -%}
    {%- if contract and contract.enforced -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " sets `contract: {enforced: true}`, which the feature_view materialization does not support: its snapshot table adds valid_from, valid_to and superseded_at to the model's columns, so a dbt contract on them cannot hold. Remove the contract; feature_view already fails the build when a column declared in the YAML is missing from the model's SQL.") }}
    {%- endif -%}
    {#- dbt fills in 'ignore' when nothing is set; only a value the user wrote counts -#}
    {%- set on_schema_change = (model.unrendered_config or {}).get('on_schema_change') or 'sync_all_columns' -%}
    {%- if on_schema_change not in ['sync_all_columns', 'fail'] -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ " sets on_schema_change: '" ~ on_schema_change ~ "'; feature_view supports 'sync_all_columns' (the default: a changed definition or column set rebuilds the table) and 'fail' (stop and say what to run). 'ignore' and 'append_new_columns' would keep rows computed by the old definition.") }}
    {%- endif -%}
    {{ return(on_schema_change) }}
{% endmacro %}


{% macro query_columns(sql) %}
    {#- The columns a query returns, one per top-level column (.name, .dtype). Dispatches. -#}
    {{ return(adapter.dispatch('query_columns', 'featurestore')(sql)) }}
{% endmacro %}

{% macro default__query_columns(sql) %}
    {{ return(get_column_schema_from_query(sql)) }}
{% endmacro %}

{% macro duckdb__query_columns(sql) %}
    {#- dbt-duckdb's get_column_schema_from_query lists a struct's fields (`s.a`) instead of the
        struct, the column the query returns: DESCRIBE gives the columns themselves. -#}
    {%- set columns = [] -%}
    {%- for row in run_query('describe (' ~ sql ~ '\n)') -%}
        {%- do columns.append(api.Column(row[0], row[1])) -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}


{% macro _model_columns(spec, model_schema, model) %}
    {#- The model's output columns (names as the warehouse returns them), checked against the
        YAML: keys, timestamps and every declared column must be there; the snapshot's own
        column names must not. -#}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set columns = model_schema | map(attribute='name') | list -%}
    {%- set lowered = columns | map('lower') | list -%}
    {%- for reserved in ['valid_from', 'valid_to', 'superseded_at', '_fs_bucket'] if reserved in lowered -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ spec['where'] ~ " returns a column named '" ~ reserved ~ "', which the snapshot table adds itself; rename it") }}
    {%- endfor -%}
    {%- for required in spec['keys'] + [spec['event_timestamp']] + ([spec['created_timestamp']] if spec['created_timestamp'] else []) -%}
        {%- if required | lower not in lowered -%}
            {{ exceptions.raise_compiler_error("featurestore: " ~ spec['where'] ~ " must return column '" ~ required ~ "' (a join key or timestamp in its YAML); it returns: " ~ (columns | join(', '))) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for declared in model.columns.keys() if declared | lower not in lowered -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ spec['where'] ~ " declares column '" ~ declared ~ "' in its YAML, but its SQL does not return it; add it to the model's select or remove it from the YAML. The SQL returns: " ~ (columns | join(', '))) }}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}


{% macro _resolve_spec(spec, columns) %}
    {#- The YAML's key and timestamp names, spelled as the warehouse returns them. -#}
    {%- set by_lower = {} -%}
    {%- for column in columns -%}
        {%- do by_lower.update({column | lower: column}) -%}
    {%- endfor -%}
    {%- set keys = [] -%}
    {%- for key in spec['keys'] -%}
        {%- do keys.append(by_lower.get(key | lower, key)) -%}
    {%- endfor -%}
    {%- set resolved = {} -%}
    {%- do resolved.update(spec) -%}
    {%- do resolved.update({
        'keys': keys,
        'event_timestamp': by_lower.get(spec['event_timestamp'] | lower, spec['event_timestamp']),
        'created_timestamp': by_lower.get(spec['created_timestamp'] | lower, spec['created_timestamp']) if spec['created_timestamp'] else none,
    }) -%}
    {{ return(resolved) }}
{% endmacro %}


{% macro swap_marker_relation(relation) %}
    {#- Exists only while an incremental run replaces rows without a transaction (Spark's
        bucket overwrite); found by a later run, it forces a full rebuild. -#}
    {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
                                  identifier=relation.identifier ~ '__fs_swapping', type='table')) }}
{% endmacro %}


{% macro build_relation(relation) %}
    {#- Where a feature view records what its rows were computed from: one row with the hash of
        the model's compiled SQL, the id and time of the full build, and the last run. -#}
    {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
                                  identifier=relation.identifier ~ '__build', type='table')) }}
{% endmacro %}


{% macro _schema_changes(existing_schema, model_schema) %}
    {#- How the existing table's columns differ from the model's (+ the snapshot's three);
        empty when they agree. Both sides are read the same way (query_columns),
        so type names compare. -#}
    {%- set existing = {} -%}
    {%- for column in existing_schema -%}
        {%- do existing.update({column.name | lower: column.dtype | lower}) -%}
    {%- endfor -%}
    {%- set changes = [] -%}
    {%- for column in model_schema -%}
        {%- set name = column.name | lower -%}
        {%- if name not in existing -%}
            {%- do changes.append("new column " ~ column.name) -%}
        {%- elif existing[name] != column.dtype | lower -%}
            {%- do changes.append("column " ~ column.name ~ " changed type from " ~ existing[name] ~ " to " ~ column.dtype | lower) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set names = model_schema | map(attribute='name') | map('lower') | list -%}
    {%- for name in existing.keys() if name not in names + ['valid_from', 'valid_to', 'superseded_at', '_fs_bucket'] -%}
        {%- do changes.append("column " ~ name ~ " removed") -%}
    {%- endfor -%}
    {{ return(changes) }}
{% endmacro %}


{% macro _can_run_incrementally(spec, existing_relation, build_record, model_schema, definition, on_schema_change) %}
    {#- Incremental only onto a snapshot table built from the same definition and columns;
        otherwise rebuild (saying why), or stop when on_schema_change is 'fail'. -#}
    {%- if not execute or existing_relation is none or not existing_relation.is_table or should_full_refresh() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if ((model.config.meta or {}).get('featurestore') or {}).get('stream') is not none -%}
        {#- A streaming view's events land when their push is answered, which may be after a
            build's clock passed their stamp: a rebuild from every landed event never misses one. -#}
        {{ log("featurestore: " ~ spec['where'] ~ " is a streaming view: rebuilt from its landed events", info=true) }}
        {{ return(false) }}
    {%- endif -%}
    {%- set where = spec['where'] -%}
    {#- (the table's columns, read once: what it is, and how it differs from the model) -#}
    {%- set existing_schema = featurestore.query_columns('select * from ' ~ existing_relation) -%}
    {%- set existing_columns = existing_schema | map(attribute='name') | map('lower') | list -%}
    {%- if 'valid_to' not in existing_columns or 'superseded_at' not in existing_columns -%}
        {{ log("featurestore: " ~ existing_relation ~ " is not a snapshot table; building it from scratch", info=true) }}
        {{ return(false) }}
    {%- endif -%}
    {%- set reasons = featurestore._schema_changes(existing_schema, model_schema) -%}
    {%- set marker = featurestore.swap_marker_relation(existing_relation) -%}
    {%- if adapter.get_relation(marker.database, marker.schema, marker.identifier) is not none -%}
        {%- do reasons.append("an earlier incremental run was stopped while it replaced rows (" ~ marker.identifier ~ " is left)") -%}
    {%- endif -%}
    {%- set recorded = none -%}
    {%- if adapter.get_relation(build_record.database, build_record.schema, build_record.identifier) is not none -%}
        {%- set result = run_query('select definition_hash from ' ~ build_record) -%}
        {%- set recorded = result.columns[0].values()[0] if result and result.rows | length > 0 else none -%}
    {%- endif -%}
    {%- if recorded is none -%}
        {%- do reasons.append("no record of the definition its rows were computed from (" ~ build_record.identifier ~ " is missing)") -%}
    {%- elif recorded != definition -%}
        {%- do reasons.append("the model's compiled SQL changed (definition " ~ recorded[:8] ~ " -> " ~ definition[:8] ~ ")") -%}
    {%- endif -%}
    {%- if reasons | length == 0 -%}
        {{ return(spec['created_timestamp'] is not none) }}
    {%- endif -%}
    {%- if on_schema_change == 'fail' -%}
        {{ exceptions.raise_compiler_error("featurestore: " ~ where ~ ": the table " ~ existing_relation ~ " was built from another definition: " ~ (reasons | join('; ')) ~ ". Its rows would be stale, and on_schema_change is 'fail'; run `dbt build --full-refresh --select " ~ spec['name'] ~ "` to rebuild it.") }}
    {%- endif -%}
    {{ log("featurestore: rebuilding " ~ existing_relation ~ " from scratch: " ~ (reasons | join('; ')), info=true) }}
    {{ return(false) }}
{% endmacro %}


{% macro _record_build(build_record, definition, full) %}
    {%- if full -%}
        {{ drop_relation_if_exists(adapter.get_relation(build_record.database, build_record.schema, build_record.identifier)) }}
        {% call statement('record_build') -%}
            {{ get_create_table_as_sql(False, build_record,
                "select " ~ dbt.string_literal(definition) ~ " as definition_hash, "
                ~ dbt.string_literal(invocation_id) ~ " as build_id, "
                ~ "cast(" ~ dbt.current_timestamp() ~ " as " ~ dbt.type_timestamp() ~ ") as built_at, "
                ~ "cast(" ~ dbt.current_timestamp() ~ " as " ~ dbt.type_timestamp() ~ ") as last_run_at") }}
        {%- endcall %}
    {%- else -%}
        {{ featurestore.touch_build_record(build_record) }}
    {%- endif -%}
{% endmacro %}


{% macro touch_build_record(build_record) %}
    {#- Set the build record's last_run_at to now. -#}
    {{ return(adapter.dispatch('touch_build_record', 'featurestore')(build_record)) }}
{% endmacro %}

{% macro default__touch_build_record(build_record) %}
    {% call statement('record_build') -%}
        update {{ build_record }} set last_run_at = cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endcall %}
{% endmacro %}


{% macro create_batch_relation(relation, sql) %}
    {#- A relation an incremental run computes once and reads several times (the batch, its
        bounds, the recomputed rows); gone when the run ends. -#}
    {{ return(adapter.dispatch('create_batch_relation', 'featurestore')(relation, sql)) }}
{% endmacro %}

{% macro default__create_batch_relation(relation, sql) %}
    {% call statement('batch_relation') -%}
        {{ get_create_table_as_sql(True, relation, sql) }}
    {%- endcall %}
{% endmacro %}


{% macro drop_batch_relations(relations) %}
    {#- Drop what create_batch_relation made, where it would outlive the run. -#}
    {{ return(adapter.dispatch('drop_batch_relations', 'featurestore')(relations)) }}
{% endmacro %}

{% macro default__drop_batch_relations(relations) %}
    {#- temporary tables end with the connection -#}
{% endmacro %}


{% macro snapshot_layout() %}
    {#- What, besides the model's SQL, decides where rows are stored (part of the definition
        hash: changing it rebuilds the table). Empty on engines without a layout of ours. -#}
    {{ return(adapter.dispatch('snapshot_layout', 'featurestore')()) }}
{% endmacro %}

{% macro default__snapshot_layout() %}{{ return('') }}{% endmacro %}


{% macro create_snapshot_table(spec, relation, sql) %}
    {#- Create the snapshot table from the versioned rows (its layout is the engine's). -#}
    {{ return(adapter.dispatch('create_snapshot_table', 'featurestore')(spec, relation, sql)) }}
{% endmacro %}

{% macro default__create_snapshot_table(spec, relation, sql) %}
    {{ get_create_table_as_sql(False, relation, sql) }}
{% endmacro %}


{% macro _feature_view_full(spec, sql, columns, existing_relation, target_relation, rejected) %}
    {%- set intermediate = make_intermediate_relation(target_relation) -%}
    {%- set backup_type = 'table' if existing_relation is none else existing_relation.type -%}
    {%- set backup = make_backup_relation(target_relation, backup_type) -%}
    {{ drop_relation_if_exists(load_cached_relation(intermediate)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup)) }}
    {%- set source_sql = 'select ' ~ featurestore._q_list(columns) ~ ' from (' ~ sql ~ '\n) as _fs_model' -%}

    {% call statement('main') -%}
        {{ featurestore.create_snapshot_table(spec, intermediate,
            featurestore.snapshot_versions_sql(spec,
                source_sql ~ ' where ' ~ featurestore._row_is_valid(spec), columns)) }}
    {%- endcall %}

    {{ drop_relation_if_exists(adapter.get_relation(rejected.database, rejected.schema, rejected.identifier)) }}
    {% call statement('rejected') -%}
        {{ get_create_table_as_sql(False, rejected, 'select ' ~ featurestore._q_list(columns) ~ ', '
            ~ featurestore._rejection_reason(spec) ~ ' as _fs_reason from (' ~ sql ~ '\n) as _fs_model where not '
            ~ featurestore._row_is_valid(spec)) }}
    {%- endcall %}

    {%- if existing_relation is not none -%}
        {{ adapter.rename_relation(existing_relation, backup) }}
    {%- endif -%}
    {{ adapter.rename_relation(intermediate, target_relation) }}
    {%- set marker = featurestore.swap_marker_relation(target_relation) -%}
    {{ drop_relation_if_exists(adapter.get_relation(marker.database, marker.schema, marker.identifier)) }}
{% endmacro %}


{% macro _feature_view_incremental(spec, sql, columns, target_relation, rejected) %}
    {%- set created = featurestore._q(spec['created_timestamp']) -%}
    {%- set column_list = featurestore._q_list(columns) -%}
    {%- set new_rows = make_temp_relation(target_relation, '__fs_new') -%}
    {%- set bounds = make_temp_relation(target_relation, '__fs_bounds') -%}
    {%- set recomputed = make_temp_relation(target_relation, '__fs_recomputed') -%}
    {#- (their names carry a timestamp, so none exists yet) -#}

    {%- if adapter.get_relation(rejected.database, rejected.schema, rejected.identifier) is none -%}
        {% call statement('create_rejected') -%}
            {{ get_create_table_as_sql(False, rejected, 'select ' ~ column_list ~ ', ' ~ featurestore._rejection_reason(spec)
                ~ ' as _fs_reason from (' ~ sql ~ '\n) as _fs_model where 1 = 0') }}
        {%- endcall %}
    {%- endif -%}

    {# 1. the batch: rows created after the watermark — the latest created timestamp placed or set
          aside, never past the build's clock (rows set aside for a created timestamp after an
          earlier build's clock are read again: this build may place them) #}
    {%- set watermark = featurestore._incremental_watermark(spec, target_relation, rejected) -%}
    {%- set batch_sql -%}
        select {{ column_list }}
        from ({{ sql }}
        ) as _fs_model
        where {{ created }} > {{ watermark }}
    {%- endset -%}
    {{ featurestore.create_batch_relation(new_rows, batch_sql) }}
    {%- if featurestore.batch_prefers_rebuild(spec, new_rows) -%}
        {{ featurestore.drop_batch_relations([new_rows]) }}
        {{ return(false) }}
    {%- endif -%}
    {#- from here on one instant, read after the batch (whose rows a model's current_timestamp stamped before it) -#}
    {%- do spec.update({'clock': featurestore._clock_now()}) -%}

    {{ featurestore._replace_rejected_after(spec, rejected, watermark, columns) }}
    {% call statement('rejected') -%}
        insert into {{ rejected }} ({{ column_list }}, _fs_reason)
        select {{ column_list }}, {{ featurestore._rejection_reason(spec) }} from {{ new_rows }}
        where not {{ featurestore._row_is_valid(spec) }}
    {%- endcall %}

    {# 2. per key in the batch: its earliest and latest new event #}
    {%- set batch_target = featurestore.batch_target(spec, target_relation, new_rows) -%}
    {{ featurestore.create_batch_relation(bounds, featurestore.batch_bounds_sql(spec, new_rows)) }}

    {# 3. recompute the changed rows of each touched key (one read of the snapshot table): its old
          rows from the last event before the batch onwards, plus the batch, versioned; kept up to
          the batch's latest event (later rows do not change) #}
    {#- (where the engine has row ids, the old rows' ids come along: swap_affected_rows deletes by them) -#}
    {%- set row_id = featurestore.snapshot_row_id('_fs_old', columns) -%}
    {%- set carried = ['_fs_rowid'] if row_id else [] -%}
    {%- set affected_sql -%}
        {{ featurestore.affected_rows_sql(spec, batch_target, bounds, columns, row_id) }}
        union all
        select {{ column_list }}{% if row_id %}, cast(null as {{ dbt.type_bigint() }}) as _fs_rowid{% endif %}
        from {{ new_rows }} where {{ featurestore._row_is_valid(spec) }}
    {%- endset -%}
    {%- set recomputed_sql -%}
        select {{ featurestore._q_list(columns + ['valid_from', 'valid_to', 'superseded_at'], '_fs_versions.') }}
            {%- for column in carried %}, _fs_versions.{{ column }}{% endfor %}
        from ({{ featurestore.snapshot_versions_sql(spec, affected_sql, columns, carried) }}) as _fs_versions
        inner join {{ bounds }} as _fs_bounds on {{ featurestore._keys_match(spec, '_fs_bounds', '_fs_versions') }}
        where _fs_versions.valid_from <= _fs_bounds._fs_max_new_event
    {%- endset -%}
    {{ featurestore.create_batch_relation(recomputed, recomputed_sql) }}
    {{ featurestore._warn_on_repeated_versions(spec, columns, recomputed, new_rows) }}

    {# 4. swap the affected rows #}
    {{ featurestore.swap_affected_rows(spec, target_relation, bounds, recomputed, columns) }}
    {{ featurestore.drop_batch_relations([new_rows, bounds, recomputed]) }}
    {{ return(true) }}
{% endmacro %}


{% macro batch_prefers_rebuild(spec, new_rows) %}
    {#- Whether this batch is better served by a full build than by an incremental run (decided
        before anything is written; the run then rebuilds as --full-refresh would). Dispatches:
        never by default; on Spark's Parquet tables when the batch touches more than
        `snapshot_rebuild_share` of the hash buckets. -#}
    {{ return(adapter.dispatch('batch_prefers_rebuild', 'featurestore')(spec, new_rows)) }}
{% endmacro %}

{% macro default__batch_prefers_rebuild(spec, new_rows) %}
    {{ return(false) }}
{% endmacro %}


{% macro batch_target(spec, target_relation, new_rows) %}
    {#- The part of the snapshot table a batch can touch (what it reads the existing rows of its
        keys from). Dispatches: the whole table by default; on Spark only the hash buckets of
        the batch's keys, so the other partitions are not read. -#}
    {{ return(adapter.dispatch('batch_target', 'featurestore')(spec, target_relation, new_rows)) }}
{% endmacro %}

{% macro default__batch_target(spec, target_relation, new_rows) %}
    {{ return(target_relation) }}
{% endmacro %}


{% macro swap_affected_rows(spec, target_relation, bounds, recomputed, columns) %}
    {#- Replace the snapshot rows a batch changed (see _is_affected) by the recomputed ones. -#}
    {{ return(adapter.dispatch('swap_affected_rows', 'featurestore')(spec, target_relation, bounds, recomputed, columns)) }}
{% endmacro %}

{% macro default__swap_affected_rows(spec, target_relation, bounds, recomputed, columns) %}
    {#- Tables that can DELETE: delete the changed rows, insert the recomputed ones (one transaction). -#}
    {% call statement('delete_affected') -%}
        {{ featurestore.delete_affected_rows(spec, target_relation, bounds) }}
    {%- endcall %}
    {{ featurestore._insert_recomputed(target_relation, recomputed, columns) }}
{% endmacro %}

{% macro duckdb__swap_affected_rows(spec, target_relation, bounds, recomputed, columns) %}
    {#- DuckDB: the changed rows are the recomputed rows' old versions, deleted by their row ids
        (snapshot_row_id; read in this transaction), which scans no column of the table. -#}
    {%- if featurestore.snapshot_row_id('_fs_old', columns) is none -%}
        {{ featurestore.default__swap_affected_rows(spec, target_relation, bounds, recomputed, columns) }}
        {{ return('') }}
    {%- endif -%}
    {% call statement('delete_affected') -%}
        delete from {{ target_relation }}
        where rowid in (select _fs_rowid from {{ recomputed }} where _fs_rowid is not null)
    {%- endcall %}
    {{ featurestore._insert_recomputed(target_relation, recomputed, columns) }}
{% endmacro %}

{% macro _insert_recomputed(target_relation, recomputed, columns) %}
    {%- set column_list = featurestore._q_list(columns) -%}
    {% call statement('main') -%}
        insert into {{ target_relation }} ({{ column_list }}, valid_from, valid_to, superseded_at)
        select {{ column_list }}, valid_from, valid_to, superseded_at from {{ recomputed }}
    {%- endcall %}
{% endmacro %}


{% macro _warn_on_repeated_versions(spec, columns, recomputed, new_rows) %}
    {#- A created timestamp that moves on every run (current_timestamp as loaded_at) re-emits
        every row as a "new" version with the same values: the table grows with copies. Say so
        when at least half of a batch repeats the version it supersedes. Read from the
        recomputed rows (the batch's keys only), not the whole table. -#}
    {%- set features = [] -%}
    {%- for column in columns if column not in spec['keys'] and column not in [spec['event_timestamp'], spec['created_timestamp']] -%}
        {%- do features.append(column) -%}
    {%- endfor -%}
    {%- set query -%}
        select
            (select count(*) from {{ new_rows }}) as _fs_batch,
            (select count(*) from {{ recomputed }} as _fs_old
             inner join {{ recomputed }} as _fs_new
                on {{ featurestore._keys_match(spec, '_fs_new', '_fs_old') }}
                and _fs_new.valid_from = _fs_old.valid_from
                and _fs_new.{{ featurestore._q(spec['created_timestamp']) }} = _fs_old.superseded_at
                {%- for column in features %}
                and {{ featurestore.null_safe_equal('_fs_new.' ~ featurestore._q(column), '_fs_old.' ~ featurestore._q(column)) }}
                {%- endfor %}
             where _fs_old.valid_to = _fs_old.valid_from
            ) as _fs_repeats
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {%- set batch = result.columns[0].values()[0] | int -%}
    {%- set repeats = result.columns[1].values()[0] | int -%}
    {%- if repeats > 0 and repeats * 2 >= batch -%}
        {%- do exceptions.warn("featurestore: " ~ spec['where'] ~ ": " ~ repeats ~ " of the " ~ batch ~ " new rows repeat the stored values of their key and event with a later created timestamp '" ~ spec['created_timestamp'] ~ "'. A created timestamp that moves on every run (e.g. current_timestamp) adds a copy of every row each run; use the time the source rows were loaded (see rolling_window's load_time_column).") -%}
    {%- endif -%}
{% endmacro %}


{% macro null_safe_equal(left, right) %}
    {{ return(adapter.dispatch('null_safe_equal', 'featurestore')(left, right)) }}
{% endmacro %}

{% macro default__null_safe_equal(left, right) -%}
    {{ left }} is not distinct from {{ right }}
{%- endmacro %}


{% macro _rejected_layout() %}{{ return('rejected:_fs_reason') }}{% endmacro %}


{% macro _build_clock(spec) %}
    {#- The build's own clock (UTC) as a SQL expression, so a model's `current_timestamp` and the
        check of its rows are one instant (one statement); an incremental run replaces it by the
        value read right after its batch is selected (_clock_now), for every later statement.
        None for a view without a created timestamp, and for a streaming view (its rows are
        computed up to the clock by its model). -#}
    {%- if not spec['created_timestamp'] or ((model.config.meta or {}).get('featurestore') or {}).get('stream') is not none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(featurestore.utc_now()) }}
{% endmacro %}


{% macro _clock_now() %}
    {#- The warehouse's UTC clock now, as a SQL literal. -#}
    {%- set now = run_query('select cast(' ~ featurestore.utc_now() ~ ' as ' ~ dbt.type_string() ~ ')').columns[0].values()[0] -%}
    {{ return('cast(' ~ dbt.string_literal(now) ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
{% endmacro %}


{% macro _rejection_reason(spec) %}
    {#- Why a row is set aside (see _row_is_valid), as a SQL expression. -#}
    {%- set clock = spec.get('clock') -%}
    {%- if clock is none -%}
        {{ return(dbt.string_literal('a NULL join key, event timestamp or created timestamp')) }}
    {%- endif -%}
    {{ return("case when " ~ featurestore._q(spec['created_timestamp']) ~ " > " ~ clock ~ " then "
              ~ dbt.string_literal(featurestore._future_reason()) ~ " else "
              ~ dbt.string_literal('a NULL join key, event timestamp or created timestamp') ~ " end") }}
{% endmacro %}


{% macro _future_reason() %}{{ return('created timestamp after the build clock') }}{% endmacro %}


{% macro _incremental_watermark(spec, target_relation, rejected) %}
    {#- The latest created timestamp placed, or set aside for a NULL, never past the build's
        clock: rows set aside for a created timestamp after an earlier build's clock are after
        it, so every run reads them again. A scalar subquery (DuckDB pushes it into the scan as
        a filter), in the created column's own type. -#}
    {%- set created = featurestore._q(spec['created_timestamp']) -%}
    {%- set query -%}
        (select coalesce(max(_fs_created), cast('0001-01-01 00:00:00' as {{ dbt.type_timestamp() }})) from (
            select max({{ created }}) as _fs_created from {{ target_relation }} where {{ created }} <= {{ spec['clock'] }}
            union all
            select max({{ created }}) from {{ rejected }} where {{ created }} <= {{ spec['clock'] }}
                and _fs_reason <> {{ dbt.string_literal(featurestore._future_reason()) }}
        ) as _fs_maxima)
    {%- endset -%}
    {{ return(featurestore.watermark_filter_value(query)) }}
{% endmacro %}


{% macro watermark_filter_value(query) %}
    {#- The watermark as the batch's filter compares with it. Dispatches: the scalar subquery
        itself by default (DuckDB pushes it into the scan as a filter); on Spark its value, read
        first, as a literal (Spark does not push a subquery into a Parquet scan). -#}
    {{ return(adapter.dispatch('watermark_filter_value', 'featurestore')(query)) }}
{% endmacro %}

{% macro default__watermark_filter_value(query) %}
    {{ return(query) }}
{% endmacro %}


{% macro _replace_rejected_after(spec, rejected, watermark, columns) %}
    {#- Rows set aside earlier with a created timestamp after the watermark are in this batch
        again (decided anew: placed, or set aside again): their old copies go. Written as a
        rebuild of the (small) rejected table, which every engine can do, and only when there are
        such rows. -#}
    {%- set created = featurestore._q(spec['created_timestamp']) -%}
    {%- set again = run_query('select count(*) from ' ~ rejected ~ ' where ' ~ created ~ ' > ' ~ watermark).columns[0].values()[0] -%}
    {%- if again | int == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set column_list = featurestore._q_list(columns) -%}
    {#- a table, not a temporary relation: Spark uncaches a view over a table it drops -#}
    {%- set kept = api.Relation.create(database=rejected.database, schema=rejected.schema,
                                       identifier=rejected.identifier ~ '__fs_kept', type='table') -%}
    {{ drop_relation_if_exists(adapter.get_relation(kept.database, kept.schema, kept.identifier)) }}
    {% call statement('rejected_kept') -%}
        {{ get_create_table_as_sql(False, kept, 'select ' ~ column_list ~ ', _fs_reason from ' ~ rejected
                                               ~ ' where not (' ~ created ~ ' > ' ~ watermark ~ ') or ' ~ created ~ ' is null') }}
    {%- endcall %}
    {{ drop_relation_if_exists(adapter.get_relation(rejected.database, rejected.schema, rejected.identifier)) }}
    {{ adapter.rename_relation(kept, rejected) }}
{% endmacro %}


{% macro _report_future_rows(spec, rejected) %}
    {#- Say how many rows this build set aside for a created timestamp after its clock. -#}
    {%- if spec.get('clock') is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set created = featurestore._q(spec['created_timestamp']) -%}
    {%- set found = run_query('select count(*), cast(max(' ~ created ~ ') as ' ~ dbt.type_string() ~ ') from ' ~ rejected
                              ~ ' where _fs_reason = ' ~ dbt.string_literal(featurestore._future_reason())) -%}
    {%- set count = found.columns[0].values()[0] | int -%}
    {%- if count > 0 -%}
        {%- do exceptions.warn("featurestore: " ~ spec['where'] ~ ": " ~ count ~ " row(s) have a created timestamp '" ~ spec['created_timestamp'] ~ "' after the build's clock (the latest is " ~ found.columns[1].values()[0] ~ " UTC): set aside in " ~ rejected ~ " (_fs_reason), so the snapshot's watermark stays at the clock and rows created later still arrive. A build after that time places them; fix the source's clock or time zone if they should be known now.") -%}
    {%- endif -%}
{% endmacro %}
