with

latest_versions as (
    {{ dedupe_latest(source('bronze', 'ap_bills'), ['bill_id']) }}
),

final as (
    select
        cast(bill_id as varchar) as bill_id,
        cast(supplier_id as varchar) as supplier_id,
        cast(issue_date as date) as issue_date,
        cast(due_date as date) as due_date,
        cast(total_amount_vnd as decimal(18, 0)) as total_amount_vnd,
        lower(trim(status)) as status,
        {{ utc_timestamp('updated_at') }} as updated_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
