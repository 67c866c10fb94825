-- The calendar: every day from the start of the year of the first business event to the end
-- of the year holding the latest due date (or the logical date, if later), so every date
-- key of every fact (issue, due, payment, cash dates) finds its day.
with

event_bounds as (
    select
        min(issue_date) as first_day,
        max(due_date) as last_day
    from {{ ref('stg_bronze__ar_invoices') }}
    union all
    select
        min(issue_date) as first_day,
        max(due_date) as last_day
    from {{ ref('stg_bronze__ap_bills') }}
    union all
    select
        min(payment_date) as first_day,
        max(payment_date) as last_day
    from {{ ref('stg_bronze__ar_payments') }}
    union all
    select
        min(payment_date) as first_day,
        max(payment_date) as last_day
    from {{ ref('stg_bronze__ap_payments') }}
    union all
    select
        min(cash_date) as first_day,
        max(cash_date) as last_day
    from {{ ref('ml_training_uc09_daily_cashflow') }}
),

bounds as (
    select
        cast({{ dbt.date_trunc('year', 'min(first_day)') }} as date) as first_day,
        cast(
            {{ dbt.dateadd(
                'day', -1,
                dbt.dateadd('year', 1, dbt.date_trunc(
                    'year', 'greatest(max(last_day), ' ~ as_of_date() ~ ')'))
            ) }} as date
        ) as last_day
    from event_bounds
),

calendar as (
    {{ days_between('bounds', 'bounds.first_day', 'bounds.last_day', 'date_day') }}
),

final as (
    select
        date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
        cast({{ iso_week('date_day') }} as integer) as iso_week_number,
        cast(extract(year from date_day) as varchar)
        || '-'
        || lpad(cast(extract(month from date_day) as varchar), 2, '0') as calendar_month,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
        cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
        {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
        extract(month from {{ dbt.dateadd('day', 1, 'date_day') }})
        <> extract(month from date_day) as is_month_end
    from calendar
)

select * from final
