{#
  Trino target: expose the bronze Parquet folders as Hive tables.

    dbt run-operation register_bronze_tables --target trino [--args '{sources: [external]}']

  For every table of the given sources (default `bronze`, models/bronze/_bronze__sources.yml;
  external-sync passes `external`) it creates, if
  missing, an external Hive table in catalog SMEPULSE_TRINO_BRONZE_CATALOG, schema `bronze`,
  over <bronze location>/<table>/ with the contract's column types and the partition column
  ingest_date, then registers new ingest_date=... folders (sync_partition_metadata FULL also
  drops partitions whose folder is gone). The dbt-silver and dbt-external-silver stages run
  it before their build.

  The bronze location is SMEPULSE_TRINO_BRONZE_LOCATION (the bronze root as Trino sees it,
  e.g. s3://smepulse/bronze), defaulting to SMEPULSE_BRONZE_ROOT. The catalog is a Hive
  connector with a metastore (file or HMS) that can reach that location; the tables are
  external, so dropping one never deletes bronze files.

  On other adapters it does nothing.
#}
{% macro register_bronze_tables(sources=['bronze']) -%}
    {{ return(adapter.dispatch('register_bronze_tables', 'smepulse')(sources)) }}
{%- endmacro %}

{% macro default__register_bronze_tables(sources) -%}
    {{ log('register_bronze_tables: nothing to do on ' ~ target.type ~ ' (bronze is read directly)', info=true) }}
{%- endmacro %}

{% macro trino__register_bronze_tables(sources) -%}
    {%- set location = env_var('SMEPULSE_TRINO_BRONZE_LOCATION', '') or env_var('SMEPULSE_BRONZE_ROOT') -%}
    {%- set location = location.rstrip('/') -%}
    {%- set catalog = env_var('SMEPULSE_TRINO_BRONZE_CATALOG', 'bronze') -%}
    {%- set statements = bronze_table_ddl(catalog, location, sources) -%}
    {%- for sql in statements -%}
        {%- do run_query(sql) -%}
    {%- endfor -%}
    {{ log('register_bronze_tables: ' ~ statements | length ~ ' statement(s) against ' ~ catalog ~ '.bronze at ' ~ location, info=true) }}
{%- endmacro %}


{# The DDL (as a list of statements) for every bronze source table; pure, so tests can render it. #}
{% macro bronze_table_ddl(catalog, location, sources) -%}
    {%- set statements = ["create schema if not exists " ~ catalog ~ ".bronze with (location = '" ~ location ~ "')"] -%}
    {%- for source in graph.sources.values() | selectattr('source_name', 'in', sources) | sort(attribute='name') -%}
        {%- set columns = [] -%}
        {%- for column in source.columns.values() -%}
            {#- Hive's timestamp has no precision in DDL; the catalog's timestamp precision applies. -#}
            {%- do columns.append(column.name ~ ' ' ~ (column.data_type | replace('timestamp(6)', 'timestamp'))) -%}
        {%- endfor -%}
        {%- do columns.append('ingest_date varchar') -%}
        {%- do statements.append(
            "create table if not exists " ~ catalog ~ ".bronze." ~ source.identifier
            ~ " (" ~ columns | join(', ') ~ ") with (external_location = '" ~ location ~ "/" ~ source.identifier
            ~ "', format = 'PARQUET', partitioned_by = ARRAY['ingest_date'])"
        ) -%}
        {%- do statements.append(
            "call " ~ catalog ~ ".system.sync_partition_metadata('bronze', '" ~ source.identifier ~ "', 'FULL')"
        ) -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}
