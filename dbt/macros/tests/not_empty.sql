{# Fails (one row) when the model has no rows: an empty gold table is a broken pipeline. #}
{% test not_empty(model) %}
select 'empty' as problem
from (select count(*) as n_rows from {{ model }}) as counted
where n_rows = 0
{% endtest %}
