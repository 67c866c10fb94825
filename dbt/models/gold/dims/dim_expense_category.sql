-- Categories of bank movements (the bank feed's `category`): which way the money goes and
-- whether it is an operating expense, for cash-flow and spend reporting.
with

known as (
    select
        categories.category,
        categories.category_name,
        categories.usual_direction,
        categories.is_operating_expense
    from (
        values
        ('sales_receipt', 'Sales receipt', 'inflow', false),
        ('supplier_payment', 'Supplier payment', 'outflow', true),
        ('payroll', 'Payroll', 'outflow', true),
        ('rent', 'Rent', 'outflow', true),
        ('tax', 'Tax', 'outflow', false),
        ('utilities', 'Utilities', 'outflow', true),
        ('other', 'Other', 'both', false)
    ) as categories (category, category_name, usual_direction, is_operating_expense)
),

observed as (
    select distinct category from {{ ref('stg_bronze__bank_transactions') }}
    where category is not null
),

all_categories as (
    select category from known
    union
    select category from observed
),

final as (
    select
        all_categories.category,
        coalesce(known.category_name, 'unknown') as category_name,
        coalesce(known.usual_direction, 'both') as usual_direction,
        coalesce(known.is_operating_expense, false) as is_operating_expense
    from all_categories
    left join known
        on all_categories.category = known.category
)

select * from final
