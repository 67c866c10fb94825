{#
  Fails on every row where `expression` is not true (null counts as a failure, so a test of
  `a <= b` also catches a missing value). Optional `where` narrows the rows checked.
  Used at model level (invariants across columns) and at column level.
#}
{% test expression_is_true(model, expression, where_clause=none, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{%- if where_clause %}
  and ({{ where_clause }})
{%- endif %}
{% endtest %}
