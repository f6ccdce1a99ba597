{#
  Pushed rows: what `POST /push` (or FeatureStore.push) wrote to the landing area for a feature
  view, as a relation the view's model selects from. Each push is one Parquet file under
  <landing>/<view>/, written atomically; the landing folder is `vars: featurestore_landing`
  (default `landing`, relative to the directory dbt runs in: the project's).
#}

{% macro pushed_rows(view_name) %}
    {{ return(adapter.dispatch('pushed_rows', 'featurestore')(view_name)) }}
{% endmacro %}


{% macro default__pushed_rows(view_name) %}
    {{ return(featurestore.landed_rows(view_name, featurestore._pushed_columns(view_name))) }}
{% endmacro %}


{% macro landed_rows(view_name, columns) %}
    {#- The landing area's files of a view as a relation of `columns` ({name, data_type}), each
        cast to its type; empty with those columns before the first push. -#}
    {{ return(adapter.dispatch('landed_rows', 'featurestore')(view_name, columns)) }}
{% endmacro %}


{% macro default__landed_rows(view_name, columns) %}
    {#- Engines that cannot read the landing area's Parquet files: an empty relation with the
        columns, and a warning saying the pushed rows are not in the table. -#}
    {%- if execute -%}
        {%- do exceptions.warn("featurestore.pushed_rows('" ~ view_name ~ "'): " ~ adapter.type() ~ " cannot read the landing area's Parquet files, so pushed rows are online only and not in this table; override landed_rows for this adapter (e.g. an external table over the folder) to build them in.") -%}
    {%- endif -%}
    {{ return(featurestore._no_pushed_rows(columns)) }}
{% endmacro %}


{% macro duckdb__landed_rows(view_name, columns) %}
    {#- The landing folder's files, cast to the columns' types. Before the first push the folder
        has no file (DuckDB refuses an empty glob), so the relation is then empty with the same
        columns. -#}
    {%- set folder = (var('featurestore_landing', 'landing') ~ '/' ~ view_name) | replace("'", "''") -%}
    {%- set found = 0 -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from glob('" ~ folder ~ "/*.parquet')").columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found | int == 0 -%}
        {{ return(featurestore._no_pushed_rows(columns)) }}
    {%- endif -%}
    (select
    {%- for column in columns %}
        cast({{ featurestore._q(column.name) }} as {{ column.data_type }}) as {{ featurestore._q(column.name) }}{{ ',' if not loop.last }}
    {%- endfor %}
    from read_parquet('{{ folder }}/*.parquet', union_by_name = true))
{% endmacro %}


{% macro _pushed_columns(view_name) %}
    {#- The calling model's YAML columns; each needs a data_type (pushed files are cast to it).
        At parse time the YAML is not applied to the model yet: none, and nothing runs. -#}
    {%- if execute and model.columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("featurestore.pushed_rows('" ~ view_name ~ "') in model '" ~ model.name ~ "' (" ~ model.original_file_path ~ "): the model declares no columns in its YAML; pushed files are read as the model's columns, each with its data_type (the view's keys, event and created timestamps and features). Declare them under `columns:` of '" ~ model.name ~ "'.") }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for name, column in model.columns.items() -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error("featurestore.pushed_rows: column '" ~ name ~ "' of model '" ~ model.name ~ "' needs a data_type in its YAML (pushed files are cast to it).") }}
        {%- endif -%}
        {%- do columns.append(column) -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}


{% macro column_type(data_type) %}
    {#- A YAML data_type as this engine spells it. -#}
    {{ return(adapter.dispatch('column_type', 'featurestore')(data_type)) }}
{% endmacro %}

{% macro default__column_type(data_type) %}{{ return(data_type) }}{% endmacro %}

{# PostgreSQL has no `double` nor `string` type: the YAML's names as PostgreSQL spells them. #}
{% macro postgres__column_type(data_type) -%}
    {%- set name = data_type | trim | lower -%}
    {%- if name == 'double' -%}double precision
    {%- elif name == 'string' -%}text
    {%- else -%}{{ data_type }}
    {%- endif -%}
{%- endmacro %}


{% macro _no_pushed_rows(columns) %}
    {#- An empty relation with the pushed columns and their types. -#}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append('cast(null as ' ~ featurestore.column_type(column.data_type) ~ ') as ' ~ featurestore._q(column.name)) -%}
    {%- endfor -%}
    {{ return('(select ' ~ (parts | join(', ')) ~ ' where 1 = 0)') }}
{% endmacro %}
