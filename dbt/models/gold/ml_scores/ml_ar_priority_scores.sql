-- UC05 receivables priority as of the logical date: every invoice with an open balance on
-- that date, scored overdue (0-40) + amount (0-30) + risk (0-30) by the rules in
-- macros/uc05/uc05_rules.sql, ranked (1 = call first), with a reason a collector can read.
with

open_invoices as (
    select * from {{ ref('fct_ar_invoices') }}
    where outstanding_vnd > 0
),

behaviour as (
    select * from {{ ref('feat_customer_payment_behaviour') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

components as (
    select
        open_invoices.invoice_id,
        open_invoices.customer_id,
        customers.customer_name,
        customers.segment,
        open_invoices.issue_date,
        open_invoices.due_date,
        open_invoices.days_overdue,
        open_invoices.total_amount_vnd,
        open_invoices.outstanding_vnd,
        behaviour.share_settled_late,
        behaviour.credit_utilisation,
        {{ uc05_overdue_score('open_invoices.days_overdue') }} as overdue_score,
        {{ uc05_amount_score('open_invoices.outstanding_vnd') }} as amount_score,
        {{ uc05_history_points('behaviour.share_settled_late') }} as history_points,
        {{ uc05_credit_points('behaviour.credit_utilisation') }} as credit_points
    from open_invoices
    left join behaviour
        on open_invoices.customer_id = behaviour.customer_id
    left join customers
        on open_invoices.customer_id = customers.customer_id
),

scored as (
    select
        *,
        history_points + credit_points as risk_score,
        overdue_score + amount_score + history_points + credit_points as priority_score
    from components
),

final as (
    select
        invoice_id,
        customer_id,
        customer_name,
        segment,
        {{ as_of_date() }} as as_of_date,
        issue_date,
        due_date,
        days_overdue,
        total_amount_vnd,
        outstanding_vnd,
        share_settled_late,
        credit_utilisation,
        overdue_score,
        amount_score,
        risk_score,
        priority_score,
        row_number() over (
            order by priority_score desc, outstanding_vnd desc, days_overdue desc, invoice_id asc
        ) as priority_rank,
        case
            when priority_score >= 70 then 'high'
            when priority_score >= 40 then 'medium'
            else 'low'
        end as priority_band,
        case
            when days_overdue > 0
                then 'overdue ' || cast(days_overdue as varchar) || ' days'
            else 'not yet due'
        end
        || ' (+' || cast(overdue_score as varchar) || '); '
        || 'open ' || cast(outstanding_vnd as varchar) || ' VND'
        || ' (+' || cast(amount_score as varchar) || '); '
        || case
            when share_settled_late is null then 'no recent payment history'
            else cast(cast(round(share_settled_late * 100) as integer) as varchar) || '% paid late'
        end
        || ', '
        || case
            when credit_utilisation is null then 'no credit limit'
            else 'credit use ' || cast(cast(round(credit_utilisation * 100) as integer) as varchar) || '%'
        end
        || ' (+' || cast(risk_score as varchar) || ')' as reason
    from scored
)

select * from final
