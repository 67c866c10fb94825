{#
  A stable bucket 0..(buckets-1) for a key: the first 8 hex digits of md5(key) read as an
  integer, modulo `buckets`. md5 is the same on every engine, so DuckDB and Trino pick the
  same rows, and a key keeps its bucket from day to day (a reviewer's sample does not churn).
#}
{% macro hash_bucket(column, buckets) -%}
    {%- set hex_prefix = 'substr(' ~ dbt.hash(column) ~ ', 1, 8)' -%}
    ({{ hex_to_bigint(hex_prefix) }} % {{ buckets }})
{%- endmacro %}

{% macro hex_to_bigint(hex_expr) -%}
    {{ return(adapter.dispatch('hex_to_bigint', 'smepulse')(hex_expr)) }}
{%- endmacro %}

{% macro default__hex_to_bigint(hex_expr) -%}
    cast(('0x' || {{ hex_expr }}) as bigint)
{%- endmacro %}

{% macro trino__hex_to_bigint(hex_expr) -%}
    from_base({{ hex_expr }}, 16)
{%- endmacro %}
