{#
  Apache Spark (dbt-spark; dbt-databricks falls back to these `spark__` macros too).

  Plain Parquet tables cannot DELETE, UPDATE or MERGE, so a feature view's snapshot table is
  laid out for `insert overwrite`: it is partitioned by `_fs_bucket`, a hash bucket of the join
  keys (`pmod(hash(keys), snapshot_buckets)`, the model config `snapshot_buckets`, default 16).
  An incremental run recomputes the touched keys as on every engine, then rewrites only the
  buckets those keys hash to: the untouched rows of those buckets and the recomputed rows replace
  exactly those partitions in one dynamic partition overwrite. Buckets the batch does not touch
  are not read or written.

  When the batch's keys touch more than a share of the buckets (the model config
  `snapshot_rebuild_share`, default 0.25; see docs/benchmarks.md, "Incremental against a
  rebuild", for how it was measured and why it depends on the table's size), rewriting them
  costs more than building the table anew: the run says so and rebuilds instead, exactly as
  `--full-refresh` would.

  Table formats that can DELETE (file_format delta, iceberg or hudi) use the engine-neutral
  delete-and-insert instead; that path needs the format's jars and is not tested offline.

  The touched buckets are a literal partition filter. A Hive metastore on Derby (local mode)
  cannot filter partitions itself: set spark.sql.hive.metastorePartitionPruning to false (the
  demo's profile does), and Spark prunes them after listing.

  Spark has no multi-statement transactions: a run killed during the overwrite can leave the
  buckets of two runs. While buckets are replaced, `<table>__fs_swapping` exists; a later run
  that finds it rebuilds the table from scratch (see swap_marker_relation).
#}

{% macro _spark_bucket_count() -%}
    {%- set buckets = config.get('snapshot_buckets', 16) -%}
    {%- if buckets is not number or buckets < 1 or buckets > 10000 -%}
        {{ exceptions.raise_compiler_error("featurestore: model '" ~ model.name ~ "' sets snapshot_buckets: " ~ buckets ~ "; give a whole number from 1 to 10000.") }}
    {%- endif -%}
    {{- buckets | int -}}
{%- endmacro %}


{% macro _spark_rebuild_share() -%}
    {#- The model's `snapshot_rebuild_share`, checked: above this share of touched buckets an
        incremental run rebuilds instead (0: always, 1: never). -#}
    {%- set share = config.get('snapshot_rebuild_share', 0.25) -%}
    {%- if share is not number or share is sameas true or share is sameas false or share < 0 or share > 1 -%}
        {{ exceptions.raise_compiler_error("featurestore: model '" ~ model.name ~ "' sets snapshot_rebuild_share: " ~ share ~ "; give a share of the snapshot buckets from 0 to 1 (0.25, the default: an incremental run whose new rows touch more than a quarter of them rebuilds the table instead; 0: always; 1: never).") }}
    {%- endif -%}
    {{- return(share) -}}
{%- endmacro %}


{% macro _spark_bucket(spec, prefix='') -%}
    {#- The snapshot bucket of a row: a hash of its join keys. -#}
    pmod(hash({{ featurestore._q_list(spec['keys'], prefix) }}), {{ featurestore._spark_bucket_count() }})
{%- endmacro %}


{% macro _spark_keys_present(spec) -%}
    {#- A row whose join keys are all present (a batch's rows with a NULL key are set aside). -#}
    {%- set present = [] -%}
    {%- for key in spec['keys'] -%}
        {%- do present.append(featurestore._q(key) ~ ' is not null') -%}
    {%- endfor -%}
    {{- return(present | join(' and ')) -}}
{%- endmacro %}


{% macro _spark_touched_buckets(spec, relation) -%}
    {#- The buckets of the keys in `relation` (the batch), as a sorted list of integers for a
        literal partition filter (our own computed integers; never a user's value). Read once per
        run: remembered in spec['touched_buckets']. -#}
    {%- if spec.get('touched_buckets') is not none -%}
        {{- return(spec['touched_buckets']) -}}
    {%- endif -%}
    {%- set result = run_query('select distinct ' ~ featurestore._spark_bucket(spec) ~ ' from ' ~ relation
                               ~ ' where ' ~ featurestore._spark_keys_present(spec)) -%}
    {%- set buckets = [] -%}
    {%- for value in result.columns[0].values() -%}
        {%- do buckets.append(value | int) -%}
    {%- endfor -%}
    {%- do spec.update({'touched_buckets': buckets | sort}) -%}
    {{- return(spec['touched_buckets']) -}}
{%- endmacro %}


{% macro _spark_bucket_filter(buckets) -%}
    {#- `_fs_bucket in (...)` of a list of touched buckets (none: no partition). -#}
    _fs_bucket in ({{ (buckets | join(', ')) if buckets else '-1' }})
{%- endmacro %}


{% macro spark__batch_prefers_rebuild(spec, new_rows) %}
    {#- Parquet: an incremental run reads every bucket its batch touches (the batch's keys' rows,
        cached) and rewrites them whole (the overwrite reads them again); past a share of the
        buckets a full build is cheaper. Says which way it goes in the run's log. -#}
    {%- if featurestore._spark_can_delete() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set total = featurestore._spark_bucket_count() | int -%}
    {%- set threshold = featurestore._spark_rebuild_share() -%}
    {%- set touched = featurestore._spark_touched_buckets(spec, new_rows) | length -%}
    {%- set rebuild = touched > 0 and touched > threshold * total -%}
    {%- do log("featurestore: " ~ model.name ~ ": the new rows touch " ~ touched ~ " of " ~ total ~ " buckets ("
               ~ ((100 * touched / total) | round | int) ~ "%); "
               ~ ("above " ~ ((100 * threshold) | round | int) ~ "% a rebuild is cheaper: rebuilding" if rebuild
                  else "rewriting those (a rebuild above " ~ ((100 * threshold) | round | int) ~ "%)"),
               info=True) -%}
    {{ return(rebuild) }}
{% endmacro %}


{% macro spark__batch_target(spec, target_relation, new_rows) %}
    {#- The existing rows of the batch's keys, read once from the touched buckets (a semi join
        with the batch's keys, which are few: broadcast) and cached, so that the bounds and the
        recomputation join small relations instead of reading and shuffling the buckets twice.
        Dropped after the overwrite (spark__swap_affected_rows). -#}
    {%- if featurestore._spark_can_delete() -%}
        {{ return(target_relation) }}
    {%- endif -%}
    {%- set key_rows = featurestore._spark_key_rows_relation(target_relation) -%}
    {{ featurestore.create_batch_relation(key_rows,
        'select _fs_old.* from ' ~ target_relation ~ ' as _fs_old left semi join (select distinct '
        ~ featurestore._q_list(spec['keys']) ~ ' from ' ~ new_rows ~ ' where ' ~ featurestore._spark_keys_present(spec)
        ~ ') as _fs_keys on ' ~ featurestore._keys_match(spec, '_fs_keys', '_fs_old')
        ~ ' where _fs_old.' ~ featurestore._spark_bucket_filter(featurestore._spark_touched_buckets(spec, new_rows))) }}
    {{ return(key_rows) }}
{% endmacro %}


{% macro _spark_key_rows_relation(target_relation) %}
    {#- The cached view of the existing rows of a batch's keys (spark__batch_target). -#}
    {{ return(api.Relation.create(identifier=target_relation.identifier ~ '__fs_key_rows', type='view')) }}
{% endmacro %}


{% macro _spark_can_delete() -%}
    {{- return(config.get('file_format', 'parquet') in ['delta', 'iceberg', 'hudi']) -}}
{%- endmacro %}


{% macro spark__snapshot_layout() %}
    {#- (read before anything is written: snapshot_rebuild_share is checked here too, but is no
        part of the layout) -#}
    {%- do featurestore._spark_rebuild_share() -%}
    {{ return('' if featurestore._spark_can_delete() else 'snapshot_buckets=' ~ featurestore._spark_bucket_count()) }}
{% endmacro %}


{% macro spark__watermark_filter_value(query) %}
    {#- The watermark as a literal, so the batch's `created > <watermark>` is a Parquet data filter:
        the files and row groups of rows created before it are skipped by their statistics instead
        of read (a scalar subquery is not pushed into the scan). Exact: a timestamp is carried as
        its microseconds since the epoch (no session time zone, no offset's rounding can move
        it), a timestamp_ntz or date as its text; another type keeps the subquery. The literal
        is our own integer or formatted value, never a user's text. -#}
    {%- set found = run_query("select typeof(_fs_watermark), case typeof(_fs_watermark) "
                              ~ "when 'timestamp' then cast(unix_micros(_fs_watermark) as string) "
                              ~ "else cast(_fs_watermark as string) end "
                              ~ "from (select " ~ query ~ " as _fs_watermark) as _fs_w").rows[0] -%}
    {%- if found[0] not in ['timestamp', 'timestamp_ntz', 'date'] or found[1] is none -%}
        {{ return(query) }}
    {%- endif -%}
    {%- if found[0] == 'timestamp' -%}
        {{ return('timestamp_micros(' ~ (found[1] | int) ~ ')') }}
    {%- endif -%}
    {{ return('cast(' ~ dbt.string_literal(found[1]) ~ ' as ' ~ found[0] ~ ')') }}
{% endmacro %}


{% macro spark__create_snapshot_table(spec, relation, sql) %}
    {%- if featurestore._spark_can_delete() -%}
        {{ featurestore.default__create_snapshot_table(spec, relation, sql) }}
    {%- else -%}
    create table {{ relation }}
    using parquet
    partitioned by (_fs_bucket)
    as
    select *, {{ featurestore._spark_bucket(spec) }} as _fs_bucket
    from ({{ sql }}) as _fs_snapshot
    {%- endif -%}
{% endmacro %}


{% macro spark__create_batch_relation(relation, sql) %}
    {#- A cached temporary view, computed once (Spark's temporary views are otherwise lazy and
        would read the snapshot table again while it is being rewritten). -#}
    {% call statement('batch_relation') -%}
        create or replace temporary view {{ relation }} as {{ sql }}
    {%- endcall %}
    {% call statement('batch_relation_cache') -%}
        cache table {{ relation }}
    {%- endcall %}
{% endmacro %}


{% macro spark__drop_batch_relations(relations) %}
    {%- for relation in relations -%}
        {% call statement('drop_batch_relation') -%}
            drop view if exists {{ relation }}
        {%- endcall %}
    {%- endfor -%}
{% endmacro %}


{% macro spark__swap_affected_rows(spec, target_relation, bounds, recomputed, columns) %}
    {%- if featurestore._spark_can_delete() -%}
        {{ featurestore.default__swap_affected_rows(spec, target_relation, bounds, recomputed, columns) }}
        {{ return('') }}
    {%- endif -%}
    {%- set column_list = featurestore._q_list(columns + ['valid_from', 'valid_to', 'superseded_at']) -%}
    {#- a marker while buckets are being replaced: a run killed in between leaves it, and the next
        run rebuilds from scratch instead of trusting a table whose buckets may be of two runs -#}
    {%- set marker = featurestore.swap_marker_relation(target_relation) -%}
    {% call statement('swap_marker') -%}
        create table if not exists {{ marker }} using parquet as select 1 as swapping
    {%- endcall %}
    {% call statement('overwrite_mode') -%}
        set spark.sql.sources.partitionOverwriteMode = dynamic
    {%- endcall %}
    {#- The touched buckets, whole: their rows the batch did not change, and the recomputed ones,
        read from the table they overwrite, in one pass. Dynamic partition overwrite allows that
        (and only it: Spark refuses a static overwrite of a path it reads): the job writes to a
        staging directory and replaces the partitions it wrote only when every task is done. -#}
    {% call statement('main') -%}
        insert overwrite table {{ target_relation }} partition (_fs_bucket)
        select {{ featurestore._q_list(columns + ['valid_from', 'valid_to', 'superseded_at'], '_fs_old.') }}, _fs_old._fs_bucket
        from {{ target_relation }} as _fs_old
        left join {{ bounds }} as _fs_bounds on {{ featurestore._keys_match(spec, '_fs_bounds', '_fs_old') }}
        where _fs_old.{{ featurestore._spark_bucket_filter(featurestore._spark_touched_buckets(spec, bounds)) }}
          and (_fs_bounds.{{ featurestore._q(spec['keys'][0]) }} is null
               or not ({{ featurestore._is_affected(spec, '_fs_old', for_reading=false) }}))
        union all
        select {{ column_list }}, {{ featurestore._spark_bucket(spec) }} as _fs_bucket
        from {{ recomputed }}
    {%- endcall %}
    {% call statement('overwrite_mode') -%}
        set spark.sql.sources.partitionOverwriteMode = static
    {%- endcall %}
    {{ featurestore.drop_batch_relations([featurestore._spark_key_rows_relation(target_relation)]) }}
    {{ drop_relation_if_exists(marker) }}
{% endmacro %}


{% macro spark__touch_build_record(build_record) %}
    {#- Parquet has no UPDATE: write the one row again with the new last_run_at. -#}
    {%- set result = run_query('select definition_hash, build_id, cast(built_at as string) from ' ~ build_record) -%}
    {%- set row = result.rows[0] -%}
    {% call statement('record_build') -%}
        insert overwrite table {{ build_record }}
        select {{ dbt.string_literal(row[0]) }}, {{ dbt.string_literal(row[1]) }},
               cast({{ dbt.string_literal(row[2]) }} as timestamp), cast(current_timestamp() as timestamp)
    {%- endcall %}
{% endmacro %}


{# Spark has no generate_series: sequence() makes the array, explode() the rows; sequence()
   refuses a stop before the start, where generate_series gives no rows. #}
{% macro spark__timestamp_series(start_expression, stop_expression, step) -%}
    explode(case when {{ start_expression }} <= {{ stop_expression }}
        then sequence({{ start_expression }}, {{ stop_expression }}, {{ featurestore.interval(step) }})
        else cast(array() as array<timestamp>) end)
{%- endmacro %}


{% macro spark__type_double() %}double{% endmacro %}


{% macro spark__column_type(data_type) -%}
    {#- The YAML's SQL type names that Spark spells differently. -#}
    {%- set name = data_type | trim | lower -%}
    {%- if name == 'double precision' -%}double
    {%- elif name == 'text' or name.startswith('varchar') or name.startswith('character varying') -%}string
    {%- else -%}{{ data_type }}
    {%- endif -%}
{%- endmacro %}


{# Spark reads backslash escapes in string literals: backslashes and quotes escaped. #}
{% macro spark__sql_string(value) -%}
    {{ return("'" ~ (value | string | replace('\\', '\\\\') | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}
