{{ config(tags=['gold_dims', 'gold']) }}

{#- The provinces in force since 1 July 2025, with their ward counts and the former provinces
    merged into each. Keyed by the bronze contract's province_code; codes written under the
    former 63-province map resolve through int_province_codes_resolved. -#}

with

provinces as (
    select * from {{ ref('stg_external__provinces') }}
),

wards as (
    select * from {{ ref('stg_external__wards') }}
),

legacy_map as (
    select * from {{ ref('stg_external__province_legacy_map') }}
),

ward_counts as (
    select
        province_code,
        count(*) as n_wards_total,
        sum(case when ward_type = 'ward' then 1 else 0 end) as n_urban_wards,
        sum(case when ward_type = 'commune' then 1 else 0 end) as n_communes,
        sum(case when ward_type = 'special_zone' then 1 else 0 end) as n_special_zones
    from wards
    group by province_code
),

former_provinces as (
    select
        province_code,
        count(*) as n_former_provinces,
        {{ dbt.listagg('legacy_province_name', "', '", 'order by legacy_province_name') }}
            as former_province_names
    from legacy_map
    group by province_code
),

final as (
    select
        provinces.province_code,
        provinces.province_name,
        provinces.province_short_name,
        provinces.province_name_ascii,
        provinces.province_codename,
        provinces.province_type,
        provinces.province_type = 'municipality' as is_municipality,
        provinces.phone_code,
        cast(coalesce(ward_counts.n_wards_total, 0) as integer) as n_wards_total,
        cast(coalesce(ward_counts.n_urban_wards, 0) as integer) as n_urban_wards,
        cast(coalesce(ward_counts.n_communes, 0) as integer) as n_communes,
        cast(coalesce(ward_counts.n_special_zones, 0) as integer) as n_special_zones,
        cast(coalesce(former_provinces.n_former_provinces, 0) as integer) as n_former_provinces,
        former_provinces.former_province_names,
        provinces.source,
        provinces.updated_at
    from provinces
    left join ward_counts
        on provinces.province_code = ward_counts.province_code
    left join former_provinces
        on provinces.province_code = former_provinces.province_code
)

select * from final
