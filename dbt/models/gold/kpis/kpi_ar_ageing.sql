-- Receivables ageing as of the logical date: the open balance in five buckets (always all
-- five rows) and the snapshot's DSO on every row.
-- DSO = open receivables / net+VAT invoiced in the 90 days up to the logical date * 90
-- (the "countback-free" standard DSO; null when nothing was invoiced in those 90 days).
with

buckets as (
    select
        bucket_list.ageing_bucket,
        bucket_list.bucket_order
    from (
        values
        ('current', 1),
        ('1-30', 2),
        ('31-60', 3),
        ('61-90', 4),
        ('90+', 5)
    ) as bucket_list (ageing_bucket, bucket_order)
),

invoices as (
    select * from {{ ref('fct_ar_invoices') }}
    where not is_cancelled
),

open_by_bucket as (
    select
        ageing_bucket,
        count(*) as n_invoices,
        count(distinct customer_id) as n_customers,
        sum(outstanding_vnd) as outstanding_vnd
    from invoices
    where outstanding_vnd > 0
    group by ageing_bucket
),

totals as (
    select
        sum(outstanding_vnd) as total_outstanding_vnd,
        sum(
            case
                when issue_date > {{ dbt.dateadd('day', -90, as_of_date()) }} then total_amount_vnd
                else 0
            end
        ) as invoiced_90d_vnd
    from invoices
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        buckets.ageing_bucket,
        buckets.bucket_order,
        coalesce(open_by_bucket.n_invoices, 0) as n_invoices,
        coalesce(open_by_bucket.n_customers, 0) as n_customers,
        cast(coalesce(open_by_bucket.outstanding_vnd, 0) as decimal(18, 0)) as outstanding_vnd,
        case
            when totals.total_outstanding_vnd > 0
                then
                    cast(coalesce(open_by_bucket.outstanding_vnd, 0) as double)
                    / cast(totals.total_outstanding_vnd as double)
            else 0
        end as share_of_outstanding,
        cast(coalesce(totals.total_outstanding_vnd, 0) as decimal(18, 0)) as total_outstanding_vnd,
        cast(totals.invoiced_90d_vnd as decimal(18, 0)) as invoiced_90d_vnd,
        case
            when totals.invoiced_90d_vnd > 0
                then
                    cast(totals.total_outstanding_vnd as double)
                    / cast(totals.invoiced_90d_vnd as double) * 90
        end as dso_days
    from buckets
    cross join totals
    left join open_by_bucket
        on buckets.ageing_bucket = open_by_bucket.ageing_bucket
)

select * from final
