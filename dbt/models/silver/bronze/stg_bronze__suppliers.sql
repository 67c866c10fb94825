with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'suppliers'), ['supplier_id']) }}
),

final as (
    select
        cast(supplier_id as varchar) as supplier_id,
        trim(supplier_name) as supplier_name,
        trim(tax_code) as tax_code,
        cast(province_code as varchar) as province_code,
        cast(payment_terms_days as integer) as payment_terms_days,
        {{ utc_timestamp('created_at') }} as created_at,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
