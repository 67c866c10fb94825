-- The bank feed booked on or before the logical date (local calendar), with its direction,
-- the kind of document it settles, and whether its reference was booked more than once.
with

transactions as (
    select
        *,
        {{ local_date('txn_at') }} as txn_date
    from {{ ref('stg_bronze__bank_transactions') }}
),

ar_payment_ids as (
    select payment_id from {{ ref('stg_bronze__ar_payments') }}
),

ap_payment_ids as (
    select payment_id from {{ ref('stg_bronze__ap_payments') }}
),

in_scope as (
    select * from transactions
    where txn_date <= {{ as_of_date() }}
),

final as (
    select
        in_scope.txn_id,
        in_scope.bank_account_id,
        in_scope.txn_at,
        in_scope.txn_date,
        in_scope.amount_vnd,
        cast(abs(in_scope.amount_vnd) as decimal(18, 0)) as abs_amount_vnd,
        case when in_scope.amount_vnd >= 0 then 'inflow' else 'outflow' end as cash_direction,
        in_scope.counterparty,
        in_scope.category,
        in_scope.description,
        in_scope.reference_id,
        case
            when ar_payment_ids.payment_id is not null then 'ar_payment'
            when ap_payment_ids.payment_id is not null then 'ap_payment'
            when in_scope.reference_id is not null then 'unknown'
            else 'none'
        end as reference_type,
        case
            when in_scope.reference_id is null then false
            else count(*) over (partition by in_scope.reference_id) > 1
        end as has_duplicate_reference
    from in_scope
    left join ar_payment_ids
        on in_scope.reference_id = ar_payment_ids.payment_id
    left join ap_payment_ids
        on in_scope.reference_id = ap_payment_ids.payment_id
)

select * from final
