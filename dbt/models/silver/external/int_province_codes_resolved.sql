{{ config(materialized='view', tags=['silver']) }}

{#- Every province code a source record may carry, current (34) or former (63), resolved to the
    current province. The GSO gave each merged province the code of one of its members, and
    that member's former code maps to itself (checked at ingest), so a code never means two
    different current provinces: the union is keyed by the code alone. -#}

with

provinces as (
    select * from {{ ref('stg_external__provinces') }}
),

legacy_map as (
    select * from {{ ref('stg_external__province_legacy_map') }}
),

all_codes as (
    select province_code as source_province_code from provinces
    union
    select legacy_province_code as source_province_code from legacy_map
),

final as (
    select
        all_codes.source_province_code,
        coalesce(provinces.province_code, legacy_map.province_code) as province_code,
        provinces.province_code is not null as is_current_code,
        legacy_map.legacy_province_name as former_province_name
    from all_codes
    left join provinces
        on all_codes.source_province_code = provinces.province_code
    left join legacy_map
        on all_codes.source_province_code = legacy_map.legacy_province_code
)

select * from final
