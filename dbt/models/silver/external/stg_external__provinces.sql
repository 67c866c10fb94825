{{ config(materialized='view', tags=['silver']) }}

{#- Each ingest is a complete snapshot of the package's map: the newest ingest is the map. -#}

with

provinces as (
    select * from {{ source('external', 'ext_provinces') }}
),

newest_ingest as (
    select max(ingest_date) as ingest_date from provinces
),

final as (
    select
        cast(provinces.province_code as varchar) as province_code,
        trim(provinces.province_name) as province_name,
        trim(provinces.province_short_name) as province_short_name,
        trim(provinces.province_name_ascii) as province_name_ascii,
        provinces.province_codename,
        lower(trim(provinces.province_type)) as province_type,
        cast(provinces.phone_code as integer) as phone_code,
        provinces.source,
        {{ utc_timestamp('provinces.updated_at') }} as updated_at,
        cast(provinces.ingest_date as date) as ingest_date
    from provinces
    inner join newest_ingest
        on provinces.ingest_date = newest_ingest.ingest_date
)

select * from final
