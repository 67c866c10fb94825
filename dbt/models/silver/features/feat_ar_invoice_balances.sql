-- Receivable balances as of the run's logical date: what each invoice issued on or before
-- that date had been paid by then, and what was still owed. Payments dated after the logical
-- date do not count yet, so re-running a past date reproduces that day's balances.
with

invoices as (
    select * from {{ ref('stg_bronze__ar_invoices') }}
    where issue_date <= {{ as_of_date() }}
),

payments as (
    select * from {{ ref('stg_bronze__ar_payments') }}
    where payment_date <= {{ as_of_date() }}
),

paid_per_invoice as (
    select
        invoice_id,
        count(*) as n_payments,
        sum(amount_vnd) as paid_to_date_vnd,
        min(payment_date) as first_payment_date,
        max(payment_date) as last_payment_date
    from payments
    group by invoice_id
),

balances as (
    select
        invoices.invoice_id,
        invoices.customer_id,
        invoices.issue_date,
        invoices.due_date,
        invoices.channel,
        invoices.status as source_status,
        invoices.status = 'cancelled' as is_cancelled,
        invoices.total_amount_vnd,
        invoices.vat_amount_vnd,
        coalesce(paid.n_payments, 0) as n_payments,
        cast(coalesce(paid.paid_to_date_vnd, 0) as decimal(18, 0)) as paid_to_date_vnd,
        paid.first_payment_date,
        paid.last_payment_date
    from invoices
    left join paid_per_invoice as paid
        on invoices.invoice_id = paid.invoice_id
),

final as (
    select
        *,
        cast(
            case
                when is_cancelled then 0
                when paid_to_date_vnd >= total_amount_vnd then 0
                else total_amount_vnd - paid_to_date_vnd
            end as decimal(18, 0)
        ) as outstanding_vnd,
        not is_cancelled and paid_to_date_vnd >= total_amount_vnd as is_settled,
        case
            when not is_cancelled and paid_to_date_vnd >= total_amount_vnd
                then last_payment_date
        end as settled_date,
        case
            when not is_cancelled and paid_to_date_vnd >= total_amount_vnd
                then {{ dbt.datediff('issue_date', 'last_payment_date', 'day') }}
        end as days_to_settle,
        case
            when is_cancelled or paid_to_date_vnd >= total_amount_vnd then 0
            when due_date >= {{ as_of_date() }} then 0
            else {{ dbt.datediff('due_date', as_of_date(), 'day') }}
        end as days_overdue,
        {{ as_of_date() }} as as_of_date
    from balances
)

select * from final
