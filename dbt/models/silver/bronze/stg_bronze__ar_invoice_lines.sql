with

latest_versions as (
    {{ dedupe_latest(
        source('bronze', 'ar_invoice_lines'),
        ['invoice_id', 'line_no'],
        'ingest_date desc',
        stamp_column=none,
    ) }}
),

-- Lines carry no audit stamp: they are visible once their invoice is (an invoice stamped
-- after the run's cutoff waits for a later run, and so do its lines).
visible_invoices as (
    select distinct versions.invoice_id
    from {{ source('bronze', 'ar_invoices') }} as versions
    where {{ as_of_predicate('updated_at', 'versions') }}
),

final as (
    select
        cast(latest_versions.invoice_id as varchar) as invoice_id,
        cast(latest_versions.line_no as integer) as line_no,
        cast(latest_versions.product_id as varchar) as product_id,
        cast(latest_versions.quantity as decimal(18, 3)) as quantity,
        cast(latest_versions.unit_price_vnd as decimal(18, 0)) as unit_price_vnd,
        cast(latest_versions.discount_vnd as decimal(18, 0)) as discount_vnd,
        cast(latest_versions.line_amount_vnd as decimal(18, 0)) as line_amount_vnd,
        cast(latest_versions.ingest_date as date) as ingest_date
    from latest_versions
    inner join visible_invoices
        on latest_versions.invoice_id = visible_invoices.invoice_id
)

select * from final
