{#
  Write-audit-publish, the publish step (the project's on-run-end hook).

  After a `dbt build`, copy every table model built in this invocation from its work schema
  "<schema>_staging" to the live "<schema>" — but only when no node failed, errored or was
  skipped. `dbt run` (no tests) and other commands never publish.

  DuckDB: all copies in one transaction, so readers see the previous gold or the new one,
  never a mix. Trino: one `CREATE OR REPLACE TABLE ... AS` per table (atomic per Iceberg
  table; a reader may briefly see some tables of the stage new and others old).
#}
{% macro publish_staged(results) -%}
    {%- if not execute or flags.WHICH != 'build' or not var('smepulse_write_audit_publish', true) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set failed = [] -%}
    {%- set tables = [] -%}
    {%- for result in results -%}
        {%- if result.status in ['error', 'fail', 'skipped', 'runtime error'] -%}
            {%- do failed.append(result.node.unique_id) -%}
        {%- elif result.node.resource_type == 'model' and smepulse_is_staged(result.node) -%}
            {%- do tables.append(result.node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if failed -%}
        {{ log('publish_staged: not publishing, ' ~ failed | length ~ ' node(s) failed: ' ~ failed | join(', '), info=true) }}
        {{ return('') }}
    {%- endif -%}
    {%- if not tables -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(adapter.dispatch('publish_staged_tables', 'smepulse')(tables)) }}
{%- endmacro %}


{% macro live_schema(node) -%}
    {{ return(node.schema[:-('_staging' | length)] if node.schema.endswith('_staging') else node.schema) }}
{%- endmacro %}


{% macro default__publish_staged_tables(nodes) -%}
    {%- set statements = ['begin transaction'] -%}
    {%- for schema in nodes | map(attribute='schema') | unique -%}
        {%- do statements.append('create schema if not exists ' ~ live_schema({'schema': schema})) -%}
    {%- endfor -%}
    {%- for node in nodes -%}
        {%- set staged = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set live = api.Relation.create(database=node.database, schema=live_schema(node), identifier=node.alias) -%}
        {%- do statements.append('create or replace table ' ~ live ~ ' as select * from ' ~ staged) -%}
    {%- endfor -%}
    {%- do statements.append('commit') -%}
    {{ log('publish_staged: publishing ' ~ nodes | length ~ ' table(s): ' ~ nodes | map(attribute='alias') | join(', '), info=true) }}
    {{ return(statements | join(';\n') ~ ';') }}
{%- endmacro %}


{% macro trino__publish_staged_tables(nodes) -%}
    {%- for schema in nodes | map(attribute='schema') | unique -%}
        {%- do run_query('create schema if not exists ' ~ adapter.quote(nodes[0].database) ~ '.' ~ live_schema({'schema': schema})) -%}
    {%- endfor -%}
    {%- for node in nodes -%}
        {%- set staged = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set live = api.Relation.create(database=node.database, schema=live_schema(node), identifier=node.alias) -%}
        {%- do run_query('create or replace table ' ~ live ~ ' as select * from ' ~ staged) -%}
    {%- endfor -%}
    {{ log('publish_staged: published ' ~ nodes | length ~ ' table(s)', info=true) }}
    {{ return('select 1') }}
{%- endmacro %}
