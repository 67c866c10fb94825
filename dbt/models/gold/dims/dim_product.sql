-- Products with list price, cost and the unit margin they imply.
with

products as (
    select * from {{ ref('stg_bronze__products') }}
),

final as (
    select
        product_id,
        sku,
        product_name,
        category as product_category,
        unit_price_vnd,
        unit_cost_vnd,
        cast(unit_price_vnd - unit_cost_vnd as decimal(18, 0)) as unit_margin_vnd,
        case
            when unit_price_vnd > 0
                then cast(unit_price_vnd - unit_cost_vnd as double) / cast(unit_price_vnd as double)
        end as unit_margin_ratio,
        vat_rate,
        is_active,
        updated_at
    from products
)

select * from final
