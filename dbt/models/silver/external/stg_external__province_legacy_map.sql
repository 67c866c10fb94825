{{ config(materialized='view', tags=['silver']) }}

{#- Each ingest is a complete snapshot of the mapping: the newest ingest is the mapping. -#}

with

legacy_map as (
    select * from {{ source('external', 'ext_province_legacy_map') }}
),

newest_ingest as (
    select max(ingest_date) as ingest_date from legacy_map
),

final as (
    select
        cast(legacy_map.legacy_province_code as varchar) as legacy_province_code,
        trim(legacy_map.legacy_province_name) as legacy_province_name,
        cast(legacy_map.province_code as varchar) as province_code,
        legacy_map.source,
        {{ utc_timestamp('legacy_map.updated_at') }} as updated_at,
        cast(legacy_map.ingest_date as date) as ingest_date
    from legacy_map
    inner join newest_ingest
        on legacy_map.ingest_date = newest_ingest.ingest_date
)

select * from final
