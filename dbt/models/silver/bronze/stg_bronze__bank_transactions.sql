with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'bank_transactions'), ['txn_id']) }}
),

final as (
    select
        cast(txn_id as varchar) as txn_id,
        cast(bank_account_id as varchar) as bank_account_id,
        {{ utc_timestamp('txn_at') }} as txn_at,
        cast(amount_vnd as decimal(18, 0)) as amount_vnd,
        trim(counterparty) as counterparty,
        trim(description) as description,
        lower(trim(category)) as category,
        nullif(trim(reference_id), '') as reference_id,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
