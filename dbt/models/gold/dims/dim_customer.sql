-- Customers with their current attributes (the newest bronze version wins in silver).
with

customers as (
    select * from {{ ref('stg_bronze__customers') }}
),

final as (
    select
        customer_id,
        customer_name,
        tax_code,
        province_code,
        segment,
        credit_limit_vnd,
        payment_terms_days,
        cast(created_at as date) as customer_since_date,
        tax_code is not null as has_tax_code,
        created_at,
        updated_at
    from customers
)

select * from final
