-- Payable balances as of the run's logical date (the mirror of feat_ar_invoice_balances):
-- bills issued on or before that date, what had been paid by then, what was still owed.
with

bills as (
    select * from {{ ref('stg_bronze__ap_bills') }}
    where issue_date <= {{ as_of_date() }}
),

payments as (
    select * from {{ ref('stg_bronze__ap_payments') }}
    where payment_date <= {{ as_of_date() }}
),

paid_per_bill as (
    select
        bill_id,
        count(*) as n_payments,
        sum(amount_vnd) as paid_to_date_vnd,
        max(payment_date) as last_payment_date
    from payments
    group by bill_id
),

balances as (
    select
        bills.bill_id,
        bills.supplier_id,
        bills.issue_date,
        bills.due_date,
        bills.status as source_status,
        bills.status = 'cancelled' as is_cancelled,
        bills.total_amount_vnd,
        coalesce(paid.n_payments, 0) as n_payments,
        cast(coalesce(paid.paid_to_date_vnd, 0) as decimal(18, 0)) as paid_to_date_vnd,
        paid.last_payment_date
    from bills
    left join paid_per_bill as paid
        on bills.bill_id = paid.bill_id
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
            when is_cancelled or paid_to_date_vnd >= total_amount_vnd then 0
            when due_date >= {{ as_of_date() }} then 0
            else {{ dbt.datediff('due_date', as_of_date(), 'day') }}
        end as days_overdue,
        {{ as_of_date() }} as as_of_date
    from balances
)

select * from final
