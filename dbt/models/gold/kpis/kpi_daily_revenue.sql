-- Daily revenue from the first invoice day to the logical date, zero-filled, excluding
-- cancelled invoices. Gross = incl. VAT, net = excl. VAT; margin from sales lines.
with

calendar as (
    select date_day from {{ ref('dim_date') }}
),

invoices as (
    select * from {{ ref('fct_ar_invoices') }}
    where not is_cancelled
),

margins as (
    select
        issue_date,
        sum(gross_margin_vnd) as gross_margin_vnd
    from {{ ref('fct_sales_lines') }}
    where not is_cancelled
    group by issue_date
),

daily as (
    select
        issue_date,
        count(*) as n_invoices,
        count(distinct customer_id) as n_customers,
        sum(total_amount_vnd) as gross_revenue_vnd,
        sum(vat_amount_vnd) as vat_vnd,
        sum(net_amount_vnd) as net_revenue_vnd,
        sum(case when channel = 'store' then net_amount_vnd else 0 end) as net_revenue_store_vnd,
        sum(case when channel = 'online' then net_amount_vnd else 0 end) as net_revenue_online_vnd,
        sum(case when channel = 'sales_rep' then net_amount_vnd else 0 end)
            as net_revenue_sales_rep_vnd
    from invoices
    group by issue_date
),

days_in_scope as (
    select calendar.date_day
    from calendar
    where
        calendar.date_day >= (select min(invoices.issue_date) from invoices)
        and calendar.date_day <= {{ as_of_date() }}
),

filled as (
    select
        days_in_scope.date_day as revenue_date,
        coalesce(daily.n_invoices, 0) as n_invoices,
        coalesce(daily.n_customers, 0) as n_customers,
        cast(coalesce(daily.gross_revenue_vnd, 0) as decimal(18, 0)) as gross_revenue_vnd,
        cast(coalesce(daily.vat_vnd, 0) as decimal(18, 0)) as vat_vnd,
        cast(coalesce(daily.net_revenue_vnd, 0) as decimal(18, 0)) as net_revenue_vnd,
        cast(coalesce(daily.net_revenue_store_vnd, 0) as decimal(18, 0)) as net_revenue_store_vnd,
        cast(coalesce(daily.net_revenue_online_vnd, 0) as decimal(18, 0)) as net_revenue_online_vnd,
        cast(coalesce(daily.net_revenue_sales_rep_vnd, 0) as decimal(18, 0))
            as net_revenue_sales_rep_vnd,
        cast(coalesce(margins.gross_margin_vnd, 0) as decimal(18, 0)) as gross_margin_vnd
    from days_in_scope
    left join daily
        on days_in_scope.date_day = daily.issue_date
    left join margins
        on days_in_scope.date_day = margins.issue_date
),

final as (
    select
        *,
        cast(
            sum(net_revenue_vnd) over (
                order by revenue_date rows between 6 preceding and current row
            ) as decimal(18, 0)
        ) as net_revenue_7d_vnd,
        cast(
            sum(net_revenue_vnd) over (
                partition by {{ dbt.date_trunc('month', 'revenue_date') }}
                order by revenue_date rows between unbounded preceding and current row
            ) as decimal(18, 0)
        ) as net_revenue_mtd_vnd
    from filled
)

select * from final
