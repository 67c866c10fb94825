with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'bank_accounts'), ['bank_account_id']) }}
),

final as (
    select
        cast(bank_account_id as varchar) as bank_account_id,
        trim(bank_name) as bank_name,
        trim(account_no_masked) as account_no_masked,
        upper(trim(currency)) as currency_code,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
