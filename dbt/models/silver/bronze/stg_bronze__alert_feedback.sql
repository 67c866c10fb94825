-- Users' verdicts on UC10 alerts: the newest verdict per transaction (a later review replaces
-- an earlier one; the files themselves are append-only).
with

latest_versions as (
    {{ dedupe_latest(
        optional_bronze_source('alert_feedback'),
        ['txn_id'],
        order_by='updated_at desc, feedback_id desc',
    ) }}
),

final as (
    select
        cast(feedback_id as varchar) as feedback_id,
        cast(txn_id as varchar) as txn_id,
        lower(trim(verdict)) as verdict,
        note,
        model_name,
        cast(model_version as varchar) as model_version,
        cast(alert_date as date) as alert_date,
        reviewed_by,
        {{ utc_timestamp('updated_at') }} as reviewed_at,
        cast(ingest_date as date) as ingest_date
    from latest_versions
)

select * from final
