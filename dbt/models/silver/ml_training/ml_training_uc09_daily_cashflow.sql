-- UC09 training set: one row per local calendar day from the first to the last bank
-- transaction (up to the logical date), zero-filled, so the forecaster sees quiet days as
-- zeros instead of gaps. outflow_vnd is a positive magnitude; net = inflow - outflow.
with

transactions as (
    select
        {{ local_date('txn_at') }} as cash_date,
        amount_vnd
    from {{ ref('stg_bronze__bank_transactions') }}
),

in_scope as (
    select * from transactions
    where cash_date <= {{ as_of_date() }}
),

bounds as (
    select
        min(cash_date) as first_day,
        max(cash_date) as last_day
    from in_scope
),

calendar as (
    {{ days_between('bounds', 'bounds.first_day', 'bounds.last_day', 'cash_date') }}
),

daily as (
    select
        cash_date,
        sum(case when amount_vnd > 0 then amount_vnd else 0 end) as inflow_vnd,
        sum(case when amount_vnd < 0 then -amount_vnd else 0 end) as outflow_vnd,
        count(*) as n_transactions
    from in_scope
    group by cash_date
),

final as (
    select
        calendar.cash_date,
        cast(coalesce(daily.inflow_vnd, 0) as decimal(18, 0)) as inflow_vnd,
        cast(coalesce(daily.outflow_vnd, 0) as decimal(18, 0)) as outflow_vnd,
        cast(coalesce(daily.inflow_vnd, 0) - coalesce(daily.outflow_vnd, 0) as decimal(18, 0))
            as net_vnd,
        cast(coalesce(daily.n_transactions, 0) as integer) as n_transactions,
        {{ as_of_date() }} as as_of_date
    from calendar
    left join daily
        on calendar.cash_date = daily.cash_date
)

select * from final
