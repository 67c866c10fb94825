-- UC10 training/scoring set: every bank transaction booked on or before the logical date
-- (local calendar), with the columns the anomaly detector engineers its features from.
with

transactions as (
    select * from {{ ref('stg_bronze__bank_transactions') }}
),

final as (
    select
        txn_id,
        bank_account_id,
        txn_at,
        amount_vnd,
        counterparty,
        category,
        description,
        reference_id,
        {{ as_of_date() }} as as_of_date
    from transactions
    where {{ local_date('txn_at') }} <= {{ as_of_date() }}
)

select * from final
