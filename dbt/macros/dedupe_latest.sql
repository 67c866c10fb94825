{#
  Keep one row per key as of the run's logical date: among the versions a run for D may read
  (ingests dated <= D, audit stamp before D's end plus the extract lag, see as_of_predicate),
  the newest `order_by` wins, ties broken by the newest ingest_date (a re-delivered file
  corrects the previous one). `stamp_column` is the audit stamp (none for tables of immutable
  rows, which are filtered by ingest date only).
  Portable: a row_number() subquery (Trino has no QUALIFY).
#}
{% macro dedupe_latest(relation, key_columns, order_by='updated_at desc, ingest_date desc', stamp_column='updated_at') -%}
    select *
    from (
        select
            versions.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by {{ order_by }}
            ) as version_rank
        from {{ relation }} as versions
        where {{ as_of_predicate(stamp_column, 'versions') }}
    ) as ranked
    where version_rank = 1
{%- endmacro %}
