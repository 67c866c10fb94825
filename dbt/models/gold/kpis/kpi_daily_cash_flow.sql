-- Daily cash flow by direction: for every local day from the first bank transaction to the
-- logical date, one row for money in and one for money out (zero-filled), with a 7-day
-- rolling sum. amount_vnd is a positive magnitude in both directions.
with

calendar as (
    select date_day from {{ ref('dim_date') }}
),

transactions as (
    select * from {{ ref('fct_bank_transactions') }}
),

directions as (
    select direction_list.cash_direction
    from (values ('inflow'), ('outflow')) as direction_list (cash_direction)
),

days_in_scope as (
    select calendar.date_day
    from calendar
    where
        calendar.date_day >= (select min(transactions.txn_date) from transactions)
        and calendar.date_day <= {{ as_of_date() }}
),

daily as (
    select
        txn_date,
        cash_direction,
        count(*) as n_transactions,
        sum(abs_amount_vnd) as amount_vnd
    from transactions
    group by txn_date, cash_direction
),

filled as (
    select
        days_in_scope.date_day as cash_date,
        directions.cash_direction,
        coalesce(daily.n_transactions, 0) as n_transactions,
        cast(coalesce(daily.amount_vnd, 0) as decimal(18, 0)) as amount_vnd
    from days_in_scope
    cross join directions
    left join daily
        on
            days_in_scope.date_day = daily.txn_date
            and directions.cash_direction = daily.cash_direction
),

final as (
    select
        *,
        cast(
            sum(amount_vnd) over (
                partition by cash_direction
                order by cash_date rows between 6 preceding and current row
            ) as decimal(18, 0)
        ) as amount_7d_vnd
    from filled
)

select * from final
