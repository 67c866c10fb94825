-- Payments to suppliers made on or before the logical date, relative to their bill's terms.
with

payments as (
    select * from {{ ref('stg_bronze__ap_payments') }}
    where payment_date <= {{ as_of_date() }}
),

bills as (
    select * from {{ ref('stg_bronze__ap_bills') }}
),

final as (
    select
        payments.payment_id,
        payments.bill_id,
        payments.supplier_id,
        payments.payment_date,
        payments.amount_vnd,
        payments.payment_method,
        payments.bank_account_id,
        {{ dbt.datediff('bills.issue_date', 'payments.payment_date', 'day') }}
            as days_after_issue,
        {{ dbt.datediff('bills.due_date', 'payments.payment_date', 'day') }}
            as days_after_due,
        payments.payment_date > bills.due_date as is_late
    from payments
    inner join bills
        on payments.bill_id = bills.bill_id
)

select * from final
