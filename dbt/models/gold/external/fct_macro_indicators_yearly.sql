{{ config(tags=['gold']) }}

{#- Yearly macro indicators (World Bank) with the change against the previous calendar year,
    for reading a business's figures against the economy (growth, inflation, rates, FX). -#}

with

indicators as (
    select * from {{ ref('stg_external__worldbank_indicators') }}
),

with_prior_year as (
    select
        current_year.*,
        prior_year.value as prior_year_value
    from indicators as current_year
    left join indicators as prior_year
        on current_year.indicator_id = prior_year.indicator_id
            and current_year.country_code = prior_year.country_code
            and prior_year.year = current_year.year - 1
),

latest_years as (
    select
        indicator_id,
        country_code,
        max(year) as latest_year
    from indicators
    group by indicator_id, country_code
),

final as (
    select
        with_prior_year.indicator_id,
        with_prior_year.country_code,
        with_prior_year.year,
        with_prior_year.indicator_name,
        with_prior_year.country_name,
        with_prior_year.value,
        with_prior_year.unit,
        with_prior_year.decimals,
        with_prior_year.prior_year_value,
        with_prior_year.value - with_prior_year.prior_year_value as change_vs_prior_year,
        case
            when with_prior_year.prior_year_value is null or with_prior_year.prior_year_value = 0 then null
            else (with_prior_year.value - with_prior_year.prior_year_value)
                / abs(with_prior_year.prior_year_value) * 100
        end as pct_change_vs_prior_year,
        with_prior_year.year = latest_years.latest_year as is_latest_year,
        with_prior_year.is_snapshot,
        with_prior_year.source_last_updated_date,
        with_prior_year.updated_at
    from with_prior_year
    inner join latest_years
        on with_prior_year.indicator_id = latest_years.indicator_id
            and with_prior_year.country_code = latest_years.country_code
)

select * from final
