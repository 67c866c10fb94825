-- Suppliers with their current attributes.
with

suppliers as (
    select * from {{ ref('stg_bronze__suppliers') }}
),

final as (
    select
        supplier_id,
        supplier_name,
        tax_code,
        province_code,
        payment_terms_days,
        cast(created_at as date) as supplier_since_date,
        created_at,
        updated_at
    from suppliers
)

select * from final
