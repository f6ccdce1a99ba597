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
    {{ exceptions.raise_compiler_error("featurestore.pushed_rows: reading the landing area's Parquet files is implemented for DuckDB; " ~ adapter.type() ~ " needs a pushed_rows override (e.g. an external table over the folder).") }}
{% endmacro %}


{% macro duckdb__pushed_rows(view_name) %}
    {#- The model's YAML columns, cast to their declared types. Before the first push the folder
        has no file (DuckDB refuses an empty glob), so the relation is then empty with the same
        columns. -#}
    {%- set folder = (var('featurestore_landing', 'landing') ~ '/' ~ view_name) | replace("'", "''") -%}
    {%- set columns = [] -%}
    {%- for name, column in model.columns.items() -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error("featurestore.pushed_rows: column '" ~ name ~ "' of model '" ~ model.name ~ "' needs a data_type in its YAML (pushed files are cast to it).") }}
        {%- endif -%}
        {%- do columns.append(column) -%}
    {%- endfor -%}
    {%- set found = 0 -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from glob('" ~ folder ~ "/*.parquet')").columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found | int > 0 -%}
        (select
        {%- for column in columns %}
            cast({{ featurestore._q(column.name) }} as {{ column.data_type }}) as {{ featurestore._q(column.name) }}{{ ',' if not loop.last }}
        {%- endfor %}
        from read_parquet('{{ folder }}/*.parquet', union_by_name = true))
    {%- else -%}
        (select
        {%- for column in columns %}
            cast(null as {{ column.data_type }}) as {{ featurestore._q(column.name) }}{{ ',' if not loop.last }}
        {%- endfor %}
        where false)
    {%- endif -%}
{% endmacro %}
