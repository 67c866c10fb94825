-- Precision of past UC10 alerts, from users' verdicts (`smepulse alerts review`): per week the
-- alerts were raised in (Monday start) and per model version, how many alerts were reviewed,
-- how many confirmed, and precision = confirmed / reviewed. Verdicts on transactions that were
-- never alerted (model_name null) are labels, not alerts, and are left out.
with

verdicts as (
    select * from {{ ref('stg_bronze__alert_feedback') }}
    where
        model_name is not null
        and alert_date is not null
        and alert_date <= {{ as_of_date() }}
),

weekly as (
    select
        cast({{ dbt.date_trunc('week', 'alert_date') }} as date) as alert_week_start_date,
        model_name,
        model_version,
        verdict
    from verdicts
),

final as (
    select
        alert_week_start_date,
        model_name,
        model_version,
        count(*) as n_reviewed,
        sum(case when verdict = 'confirmed' then 1 else 0 end) as n_confirmed,
        sum(case when verdict = 'false_positive' then 1 else 0 end) as n_false_positive,
        cast(sum(case when verdict = 'confirmed' then 1 else 0 end) as double)
        / count(*) as alert_precision
    from weekly
    group by alert_week_start_date, model_name, model_version
)

select * from final
