{#
  Completeness: every key of `to` (optionally filtered by `where_clause`) appears in this
  model's `column_name`. E.g. the UC05 score must hold every open receivable. Fails for each
  missing key.
#}
{% test covers_all_keys(model, column_name, to, field, where_clause=none) %}
select expected.{{ field }} as missing_key
from {{ to }} as expected
left join {{ model }} as actual
    on actual.{{ column_name }} = expected.{{ field }}
where actual.{{ column_name }} is null
{%- if where_clause %}
  and ({{ where_clause }})
{%- endif %}
{% endtest %}
