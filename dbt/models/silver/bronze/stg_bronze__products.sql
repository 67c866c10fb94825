with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'products'), ['product_id']) }}
),

final as (
    select
        cast(product_id as varchar) as product_id,
        trim(sku) as sku,
        trim(product_name) as product_name,
        lower(trim(category)) as category,
        cast(unit_price_vnd as decimal(18, 0)) as unit_price_vnd,
        cast(unit_cost_vnd as decimal(18, 0)) as unit_cost_vnd,
        cast(vat_rate as decimal(5, 4)) as vat_rate,
        cast(is_active as boolean) as is_active,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
