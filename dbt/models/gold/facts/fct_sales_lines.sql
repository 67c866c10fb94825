-- Sales at line level: what was sold, to whom, through which channel, at what margin
-- (cost from the product's current unit cost). Lines of cancelled invoices stay, flagged,
-- so that totals reconcile with the invoices; revenue KPIs exclude them.
with

lines as (
    select * from {{ ref('stg_bronze__ar_invoice_lines') }}
),

invoices as (
    select * from {{ ref('feat_ar_invoice_balances') }}
),

products as (
    select * from {{ ref('stg_bronze__products') }}
),

final as (
    select
        lines.invoice_id || '-' || cast(lines.line_no as varchar) as sales_line_id,
        lines.invoice_id,
        lines.line_no,
        invoices.issue_date,
        invoices.customer_id,
        invoices.channel,
        lines.product_id,
        lines.quantity,
        lines.unit_price_vnd,
        lines.discount_vnd,
        lines.line_amount_vnd,
        cast(round(lines.quantity * products.unit_cost_vnd) as decimal(18, 0)) as cost_amount_vnd,
        cast(
            lines.line_amount_vnd - round(lines.quantity * products.unit_cost_vnd)
            as decimal(18, 0)
        ) as gross_margin_vnd,
        invoices.is_cancelled
    from lines
    inner join invoices
        on lines.invoice_id = invoices.invoice_id
    left join products
        on lines.product_id = products.product_id
)

select * from final
