-- Working capital by month, up to the logical date's month (which ends at the logical date):
--   ar_outstanding_vnd / ap_outstanding_vnd  balances at the period end
--                                             = cumulative invoiced - cumulative paid
--   dso_days = ar_outstanding / invoiced in the period * days in the period
--   dpo_days = ap_outstanding / billed in the period * days in the period
--   net_working_capital_vnd = receivables - payables (no inventory data in bronze)
-- Cancelled documents are left out entirely (they owe nothing and were never paid).
with

calendar as (
    select
        date_day,
        month_start_date
    from {{ ref('dim_date') }}
),

invoices as (
    select * from {{ ref('fct_ar_invoices') }}
    where not is_cancelled
),

ar_payments as (
    select payments.*
    from {{ ref('fct_ar_payments') }} as payments
    inner join invoices
        on payments.invoice_id = invoices.invoice_id
),

bills as (
    select * from {{ ref('fct_ap_bills') }}
    where not is_cancelled
),

ap_payments as (
    select payments.*
    from {{ ref('fct_ap_payments') }} as payments
    inner join bills
        on payments.bill_id = bills.bill_id
),

movements as (
    select
        issue_date as event_date,
        total_amount_vnd as ar_invoiced,
        0 as ar_paid,
        0 as ap_billed,
        0 as ap_paid
    from invoices
    union all
    select
        payment_date as event_date,
        0 as ar_invoiced,
        amount_vnd as ar_paid,
        0 as ap_billed,
        0 as ap_paid
    from ar_payments
    union all
    select
        issue_date as event_date,
        0 as ar_invoiced,
        0 as ar_paid,
        total_amount_vnd as ap_billed,
        0 as ap_paid
    from bills
    union all
    select
        payment_date as event_date,
        0 as ar_invoiced,
        0 as ar_paid,
        0 as ap_billed,
        amount_vnd as ap_paid
    from ap_payments
),

monthly as (
    select
        calendar.month_start_date,
        sum(movements.ar_invoiced) as ar_invoiced_vnd,
        sum(movements.ar_paid) as ar_paid_vnd,
        sum(movements.ap_billed) as ap_billed_vnd,
        sum(movements.ap_paid) as ap_paid_vnd
    from movements
    inner join calendar
        on movements.event_date = calendar.date_day
    group by calendar.month_start_date
),

months as (
    select
        calendar.month_start_date,
        max(calendar.date_day) as month_end_date,
        count(*) as days_in_period
    from calendar
    where
        calendar.date_day <= {{ as_of_date() }}
        and calendar.month_start_date >= (select min(monthly.month_start_date) from monthly)
    group by calendar.month_start_date
),

running as (
    select
        months.month_start_date,
        months.month_end_date,
        months.days_in_period,
        coalesce(monthly.ar_invoiced_vnd, 0) as ar_invoiced_vnd,
        coalesce(monthly.ap_billed_vnd, 0) as ap_billed_vnd,
        sum(coalesce(monthly.ar_invoiced_vnd, 0) - coalesce(monthly.ar_paid_vnd, 0)) over (
            order by months.month_start_date rows between unbounded preceding and current row
        ) as ar_outstanding_vnd,
        sum(coalesce(monthly.ap_billed_vnd, 0) - coalesce(monthly.ap_paid_vnd, 0)) over (
            order by months.month_start_date rows between unbounded preceding and current row
        ) as ap_outstanding_vnd
    from months
    left join monthly
        on months.month_start_date = monthly.month_start_date
),

final as (
    select
        month_start_date,
        month_end_date,
        days_in_period,
        cast(ar_invoiced_vnd as decimal(18, 0)) as ar_invoiced_vnd,
        cast(ap_billed_vnd as decimal(18, 0)) as ap_billed_vnd,
        cast(ar_outstanding_vnd as decimal(18, 0)) as ar_outstanding_vnd,
        cast(ap_outstanding_vnd as decimal(18, 0)) as ap_outstanding_vnd,
        cast(ar_outstanding_vnd - ap_outstanding_vnd as decimal(18, 0)) as net_working_capital_vnd,
        case
            when ar_invoiced_vnd > 0
                then
                    cast(ar_outstanding_vnd as double)
                    / cast(ar_invoiced_vnd as double) * days_in_period
        end as dso_days,
        case
            when ap_billed_vnd > 0
                then
                    cast(ap_outstanding_vnd as double)
                    / cast(ap_billed_vnd as double) * days_in_period
        end as dpo_days
    from running
)

select * from final
