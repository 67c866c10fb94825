-- Reconciliation of receivables: each customer payment (on or before the logical date)
-- linked to its invoice and to the bank transactions that carry its payment_id, with the
-- running balance of the invoice after the payment and a reconciliation status:
--   cash               paid in cash, no bank movement expected
--   matched            exactly one bank transaction with the same amount
--   missing_bank_txn   a non-cash payment with no bank transaction
--   duplicate_bank_txn the bank booked the payment more than once
--   amount_mismatch    one bank transaction, different amount
with

payments as (
    select * from {{ ref('fct_ar_payments') }}
),

invoices as (
    select * from {{ ref('fct_ar_invoices') }}
),

bank as (
    select
        reference_id,
        count(*) as n_bank_txns,
        sum(amount_vnd) as bank_amount_vnd,
        min(txn_id) as first_txn_id
    from {{ ref('fct_bank_transactions') }}
    where reference_type = 'ar_payment'
    group by reference_id
),

joined as (
    select
        payments.payment_id,
        payments.invoice_id,
        payments.customer_id,
        invoices.customer_id as invoice_customer_id,
        payments.payment_date,
        payments.payment_method,
        payments.amount_vnd,
        invoices.total_amount_vnd as invoice_total_vnd,
        sum(payments.amount_vnd) over (
            partition by payments.invoice_id
            order by payments.payment_date, payments.payment_id
            rows between unbounded preceding and current row
        ) as cumulative_paid_vnd,
        coalesce(bank.n_bank_txns, 0) as n_bank_txns,
        bank.bank_amount_vnd,
        bank.first_txn_id as bank_txn_id
    from payments
    inner join invoices
        on payments.invoice_id = invoices.invoice_id
    left join bank
        on payments.payment_id = bank.reference_id
),

final as (
    select
        payment_id,
        invoice_id,
        customer_id,
        payment_date,
        payment_method,
        amount_vnd,
        invoice_total_vnd,
        cast(cumulative_paid_vnd as decimal(18, 0)) as cumulative_paid_vnd,
        cast(invoice_total_vnd - cumulative_paid_vnd as decimal(18, 0)) as remaining_after_vnd,
        customer_id = invoice_customer_id as is_same_customer,
        n_bank_txns,
        cast(bank_amount_vnd as decimal(18, 0)) as bank_amount_vnd,
        bank_txn_id,
        case
            when payment_method = 'cash' and n_bank_txns = 0 then 'cash'
            when n_bank_txns = 0 then 'missing_bank_txn'
            when n_bank_txns > 1 then 'duplicate_bank_txn'
            when bank_amount_vnd = amount_vnd then 'matched'
            else 'amount_mismatch'
        end as reconciliation_status
    from joined
)

select * from final
