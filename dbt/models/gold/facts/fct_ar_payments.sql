-- Customer payments received on or before the logical date, with how early or late each
-- came relative to its invoice.
with

payments as (
    select * from {{ ref('stg_bronze__ar_payments') }}
    where payment_date <= {{ as_of_date() }}
),

invoices as (
    select * from {{ ref('stg_bronze__ar_invoices') }}
),

final as (
    select
        payments.payment_id,
        payments.invoice_id,
        payments.customer_id,
        payments.payment_date,
        payments.amount_vnd,
        payments.payment_method,
        payments.bank_account_id,
        {{ dbt.datediff('invoices.issue_date', 'payments.payment_date', 'day') }}
            as days_after_issue,
        {{ dbt.datediff('invoices.due_date', 'payments.payment_date', 'day') }}
            as days_after_due,
        payments.payment_date > invoices.due_date as is_late
    from payments
    inner join invoices
        on payments.invoice_id = invoices.invoice_id
)

select * from final
