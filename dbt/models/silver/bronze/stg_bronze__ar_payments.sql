with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'ar_payments'), ['payment_id']) }}
),

final as (
    select
        cast(payment_id as varchar) as payment_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(payment_date as date) as payment_date,
        cast(amount_vnd as decimal(18, 0)) as amount_vnd,
        lower(trim(method)) as payment_method,
        cast(bank_account_id as varchar) as bank_account_id,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
