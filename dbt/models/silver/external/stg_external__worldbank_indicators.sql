{{ config(materialized='view', tags=['silver']) }}

{#- Ingests are incremental (new years and revised values only): the newest version of each
    (indicator, country, year) across all ingests is the current value. -#}

with

latest_versions as (
    {{ dedupe_latest(
        source('external', 'ext_worldbank_indicators'),
        ['indicator_id', 'country_code', 'year'],
    ) }}
),

-- `year` and `value` keep the World Bank API's own names (hence the noqa: RF04 below).
final as (
    select
        upper(trim(cast(indicator_id as varchar))) as indicator_id,
        upper(trim(cast(country_code as varchar))) as country_code,
        cast(year as integer) as year,  -- noqa: RF04
        trim(indicator_name) as indicator_name,
        trim(country_name) as country_name,
        cast(value as double) as value,  -- noqa: RF04
        nullif(trim(unit), '') as unit,
        nullif(trim(obs_status), '') as obs_status,
        cast(decimals as integer) as decimals,
        source,
        source = 'bundled-snapshot' as is_snapshot,
        cast(source_last_updated as date) as source_last_updated_date,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
