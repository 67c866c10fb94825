{#
  Keep one row per key: the newest version across ingest dates. Bronze is append-only by
  ingest date and may hold the same key several times; the newest `order_by` wins, ties broken
  by the newest ingest_date (a re-delivered file corrects the previous one).
  Portable: a row_number() subquery (Trino has no QUALIFY).
#}
{% macro dedupe_latest(relation, key_columns, order_by='updated_at desc, ingest_date desc') -%}
    select *
    from (
        select
            versions.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by {{ order_by }}
            ) as version_rank
        from {{ relation }} as versions
    ) as ranked
    where version_rank = 1
{%- endmacro %}
