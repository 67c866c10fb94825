{#
  Where models land.

  Views land exactly in the schema named by their folder config (`silver`, `gold`: from
  SMEPULSE_SILVER_SCHEMA / SMEPULSE_GOLD_SCHEMA), not dbt's default "<target>_<custom>".

  Tables follow write-audit-publish (atomic gold): dbt builds and tests them in the work
  schema "<schema>_staging"; the on-run-end hook `publish_staged` (macros/publish_staged.sql)
  copies them to the live schema only when every node of the `dbt build` passed. A failed
  test therefore leaves the live table exactly as it was. Refs between models resolve to the
  work schema, which always holds the newest built version (a stage that failed stops the
  pipeline, so a later stage never reads an unpublished failure in a normal run).
  Consequence: a view must not `ref` a table (it would read the work copy); none does.

  var('smepulse_write_audit_publish', true) = false builds tables straight into the live
  schema (no publish step), e.g. for ad-hoc development.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set base = (custom_schema_name or target.schema) | trim -%}
    {%- if node is not none and smepulse_is_staged(node) -%}
        {{ base }}_staging
    {%- else -%}
        {{ base }}
    {%- endif -%}
{%- endmacro %}


{# True for the nodes that are built in the work schema and published after their tests. #}
{% macro smepulse_is_staged(node) -%}
    {%- if not var('smepulse_write_audit_publish', true) -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(node.resource_type == 'model' and node.config.materialized == 'table') }}
{%- endmacro %}
