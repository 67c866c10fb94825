-- How each customer pays, as of the run's logical date: the input of UC05's risk component.
-- Settlement history looks back var('uc05_lookback_days') days of issue dates (recent
-- behaviour matters most); the open balance and credit use count every open invoice.
with

customers as (
    select * from {{ ref('stg_bronze__customers') }}
),

balances as (
    select * from {{ ref('feat_ar_invoice_balances') }}
    where not is_cancelled
),

recent_settled as (
    select
        customer_id,
        count(*) as n_settled_invoices,
        sum(case when settled_date > due_date then 1 else 0 end) as n_settled_late,
        avg(cast(days_to_settle as double)) as avg_days_to_pay,
        avg(
            cast(
                case
                    when settled_date > due_date
                        then {{ dbt.datediff('due_date', 'settled_date', 'day') }}
                    else 0
                end as double
            )
        ) as avg_days_late
    from balances
    where
        is_settled
        and issue_date > {{ dbt.dateadd('day', -1 * var('uc05_lookback_days'), as_of_date()) }}
    group by customer_id
),

open_items as (
    select
        customer_id,
        count(*) as n_open_invoices,
        sum(case when days_overdue > 0 then 1 else 0 end) as n_overdue_invoices,
        sum(outstanding_vnd) as outstanding_vnd,
        max(days_overdue) as max_days_overdue
    from balances
    where outstanding_vnd > 0
    group by customer_id
),

final as (
    select
        customers.customer_id,
        coalesce(recent_settled.n_settled_invoices, 0) as n_settled_invoices,
        coalesce(recent_settled.n_settled_late, 0) as n_settled_late,
        case
            when coalesce(recent_settled.n_settled_invoices, 0) > 0
                then
                    cast(recent_settled.n_settled_late as double)
                    / recent_settled.n_settled_invoices
        end as share_settled_late,
        recent_settled.avg_days_to_pay,
        recent_settled.avg_days_late,
        coalesce(open_items.n_open_invoices, 0) as n_open_invoices,
        coalesce(open_items.n_overdue_invoices, 0) as n_overdue_invoices,
        cast(coalesce(open_items.outstanding_vnd, 0) as decimal(18, 0)) as outstanding_vnd,
        coalesce(open_items.max_days_overdue, 0) as max_days_overdue,
        customers.credit_limit_vnd,
        case
            when customers.credit_limit_vnd > 0
                then
                    cast(coalesce(open_items.outstanding_vnd, 0) as double)
                    / cast(customers.credit_limit_vnd as double)
        end as credit_utilisation,
        {{ as_of_date() }} as as_of_date
    from customers
    left join recent_settled
        on customers.customer_id = recent_settled.customer_id
    left join open_items
        on customers.customer_id = open_items.customer_id
)

select * from final
