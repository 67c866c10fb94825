{#
  A daily series has exactly one row per calendar day between its first and last day
  (`partition_by` columns, if given, each form their own series). Fails with the series
  whose row count differs from its span in days.
#}
{% test contiguous_days(model, column_name, partition_by=[]) %}
select
    {% for col in partition_by %}{{ col }}, {% endfor %}
    min({{ column_name }}) as first_day,
    max({{ column_name }}) as last_day,
    count(*) as n_rows,
    count(distinct {{ column_name }}) as n_days
from {{ model }}
{%- if partition_by %}
group by {{ partition_by | join(', ') }}
{%- endif %}
having count(*) <> {{ dbt.datediff('min(' ~ column_name ~ ')', 'max(' ~ column_name ~ ')', 'day') }} + 1
    or count(*) <> count(distinct {{ column_name }})
{% endtest %}
