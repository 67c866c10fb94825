-- Payment methods: the contract's four, plus any other code met in the payments so that a
-- new method from the source still joins (its attributes then read "unknown" and the
-- accepted_values test on this model flags it).
with

known as (
    select
        methods.payment_method,
        methods.method_name,
        methods.is_cash,
        methods.settles_through_bank
    from (
        values
        ('bank_transfer', 'Bank transfer', false, true),
        ('cash', 'Cash', true, false),
        ('card', 'Card', false, true),
        ('e_wallet', 'E-wallet', false, true)
    ) as methods (payment_method, method_name, is_cash, settles_through_bank)
),

observed as (
    select payment_method from {{ ref('stg_bronze__ar_payments') }}
    union
    select payment_method from {{ ref('stg_bronze__ap_payments') }}
),

all_methods as (
    select payment_method from known
    union
    select payment_method from observed
    where payment_method is not null
),

final as (
    select
        all_methods.payment_method,
        coalesce(known.method_name, 'unknown') as method_name,
        coalesce(known.is_cash, false) as is_cash,
        coalesce(known.settles_through_bank, false) as settles_through_bank
    from all_methods
    left join known
        on all_methods.payment_method = known.payment_method
)

select * from final
