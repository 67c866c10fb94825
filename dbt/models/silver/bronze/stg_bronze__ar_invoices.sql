with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'ar_invoices'), ['invoice_id']) }}
),

final as (
    select
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(issue_date as date) as issue_date,
        cast(due_date as date) as due_date,
        lower(trim(channel)) as channel,
        cast(total_amount_vnd as decimal(18, 0)) as total_amount_vnd,
        cast(vat_amount_vnd as decimal(18, 0)) as vat_amount_vnd,
        lower(trim(status)) as status,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
