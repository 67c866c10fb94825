{#
  The run's business date as a SQL DATE literal: var('logical_date') (YYYY-MM-DD, passed by
  the runner from settings.business_date) or, when empty, the warehouse's current date.
  Everything "as of" (open balances, days overdue, the UC05 score) is computed against it,
  so re-running a past logical date reproduces that day's view of the data.
#}
{% macro as_of_date() -%}
    {%- set value = var('logical_date', '') -%}
    {%- if value -%}
        {%- if not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("var logical_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
        {%- endif -%}
        date '{{ value }}'
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}
