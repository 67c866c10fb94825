-- The SME's bank accounts.
with

accounts as (
    select * from {{ ref('stg_bronze__bank_accounts') }}
),

final as (
    select
        bank_account_id,
        bank_name,
        account_no_masked,
        currency_code,
        bank_name || ' ' || account_no_masked as account_label,
        updated_at
    from accounts
)

select * from final
