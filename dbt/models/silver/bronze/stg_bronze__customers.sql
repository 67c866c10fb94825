with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'customers'), ['customer_id']) }}
),

final as (
    select
        cast(customer_id as varchar) as customer_id,
        trim(customer_name) as customer_name,
        trim(tax_code) as tax_code,
        cast(province_code as varchar) as province_code,
        lower(trim(segment)) as segment,
        cast(credit_limit_vnd as decimal(18, 0)) as credit_limit_vnd,
        cast(payment_terms_days as integer) as payment_terms_days,
        {{ utc_timestamp('created_at') }} as created_at,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
