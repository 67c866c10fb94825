-- Receivables: every invoice issued on or before the logical date with its balance and
-- ageing as of that date.
with

balances as (
    select * from {{ ref('feat_ar_invoice_balances') }}
),

final as (
    select
        invoice_id,
        customer_id,
        channel,
        issue_date,
        due_date,
        source_status,
        is_cancelled,
        cast(total_amount_vnd - vat_amount_vnd as decimal(18, 0)) as net_amount_vnd,
        vat_amount_vnd,
        total_amount_vnd,
        n_payments,
        paid_to_date_vnd,
        outstanding_vnd,
        is_settled,
        settled_date,
        first_payment_date,
        last_payment_date,
        days_overdue,
        case
            when outstanding_vnd = 0 then 'settled'
            when days_overdue = 0 then 'current'
            when days_overdue <= 30 then '1-30'
            when days_overdue <= 60 then '31-60'
            when days_overdue <= 90 then '61-90'
            else '90+'
        end as ageing_bucket,
        days_to_settle,
        as_of_date
    from balances
)

select * from final
