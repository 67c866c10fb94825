with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'ar_invoice_lines'), ['invoice_id', 'line_no'], 'ingest_date desc') }}
),

final as (
    select
        cast(invoice_id as varchar) as invoice_id,
        cast(line_no as integer) as line_no,
        cast(product_id as varchar) as product_id,
        cast(quantity as decimal(18, 3)) as quantity,
        cast(unit_price_vnd as decimal(18, 0)) as unit_price_vnd,
        cast(discount_vnd as decimal(18, 0)) as discount_vnd,
        cast(line_amount_vnd as decimal(18, 0)) as line_amount_vnd,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
