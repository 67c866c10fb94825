-- The seed's "1 % sample", made deterministic: the invoices whose md5(invoice_id) falls in
-- bucket 0 of 100 (macros/cross_db/sampling.sql). The same invoice is in the sample every day
-- and on every engine, so a reviewer's work does not churn. Each sampled invoice carries the
-- audit checks a reviewer starts from: do its lines + VAT add up to its total, and do its
-- payments stay within it.
with

invoices as (
    select * from {{ ref('fct_ar_invoices') }}
),

lines as (
    select
        invoice_id,
        count(*) as n_lines,
        sum(line_amount_vnd) as lines_amount_vnd
    from {{ ref('fct_sales_lines') }}
    group by invoice_id
),

sampled as (
    select
        invoices.*,
        {{ hash_bucket('invoices.invoice_id', 100) }} as sample_bucket
    from invoices
),

final as (
    select
        sampled.invoice_id,
        sampled.customer_id,
        sampled.issue_date,
        sampled.due_date,
        sampled.channel,
        sampled.source_status,
        sampled.total_amount_vnd,
        sampled.vat_amount_vnd,
        coalesce(lines.n_lines, 0) as n_lines,
        cast(coalesce(lines.lines_amount_vnd, 0) as decimal(18, 0)) as lines_amount_vnd,
        coalesce(lines.lines_amount_vnd, 0) + sampled.vat_amount_vnd
        = sampled.total_amount_vnd as is_total_consistent,
        sampled.paid_to_date_vnd,
        sampled.outstanding_vnd,
        sampled.paid_to_date_vnd <= sampled.total_amount_vnd as is_within_total,
        sampled.sample_bucket,
        'md5(invoice_id) bucket 0 of 100' as sample_rule,
        sampled.as_of_date
    from sampled
    left join lines
        on sampled.invoice_id = lines.invoice_id
    where sampled.sample_bucket = 0
)

select * from final
