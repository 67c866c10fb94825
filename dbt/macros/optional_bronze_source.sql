{#
  An optional bronze table (the contract's `optional: True`, e.g. alert_feedback): absent
  until its first file is written. On DuckDB, bronze is read straight from Parquet and a glob
  without a match is an error, so when no file exists yet this renders an empty relation with
  the source's columns (typed from their data_type) instead of the source. On Trino the table
  is registered by register_bronze_tables over the folder, and an empty folder reads as empty.
#}
{% macro optional_bronze_source(table) -%}
    {{ return(adapter.dispatch('optional_bronze_source', 'smepulse')(table)) }}
{%- endmacro %}

{% macro default__optional_bronze_source(table) -%}
    {{ return(source('bronze', table)) }}
{%- endmacro %}

{% macro duckdb__optional_bronze_source(table) -%}
    {%- set relation = source('bronze', table) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set pattern = env_var('SMEPULSE_BRONZE_ROOT', '../.smepulse/bronze') ~ '/' ~ table ~ '/ingest_date=*/*.parquet' -%}
    {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] -%}
    {%- if found > 0 -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', 'bronze') | selectattr('name', 'equalto', table) | first -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.append('cast(null as ' ~ column.data_type ~ ') as ' ~ column.name) -%}
    {%- endfor -%}
    {%- do columns.append('cast(null as varchar) as ingest_date') -%}
    {{ return('(select ' ~ columns | join(', ') ~ ' where false)') }}
{%- endmacro %}
