-- Sales channels: the contract's three plus any other code met on invoices.
with

known as (
    select
        channels.channel,
        channels.channel_name,
        channels.is_online
    from (
        values
        ('store', 'Store', false),
        ('online', 'Online', true),
        ('sales_rep', 'Sales representative', false)
    ) as channels (channel, channel_name, is_online)
),

observed as (
    select distinct channel from {{ ref('stg_bronze__ar_invoices') }}
    where channel is not null
),

all_channels as (
    select channel from known
    union
    select channel from observed
),

final as (
    select
        all_channels.channel,
        coalesce(known.channel_name, 'unknown') as channel_name,
        coalesce(known.is_online, false) as is_online
    from all_channels
    left join known
        on all_channels.channel = known.channel
)

select * from final
