{{ config(materialized='view', tags=['silver']) }}

{#- Each ingest is a complete snapshot of the package's map: the newest ingest is the map. -#}

with

wards as (
    select * from {{ source('external', 'ext_wards') }}
),

newest_ingest as (
    select max(ingest_date) as ingest_date from wards
),

final as (
    select
        cast(wards.ward_code as varchar) as ward_code,
        trim(wards.ward_name) as ward_name,
        trim(wards.ward_name_ascii) as ward_name_ascii,
        wards.ward_codename,
        cast(wards.province_code as varchar) as province_code,
        lower(trim(wards.ward_type)) as ward_type,
        wards.source,
        {{ utc_timestamp('wards.updated_at') }} as updated_at,
        cast(wards.ingest_date as date) as ingest_date
    from wards
    inner join newest_ingest
        on wards.ingest_date = newest_ingest.ingest_date
)

select * from final
