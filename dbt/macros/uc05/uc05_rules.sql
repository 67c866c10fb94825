{#
  UC05 receivables priority: three explainable rules, each a step function so that a
  collector can read the reason off the row. Documented with their boundaries in
  models/gold/ml_scores/ml_ar_priority_scores.yml and pinned by its unit tests.
#}

{# Overdue (0-40): 0 when not yet due; 10 for 1-30 days past due; 20 for 31-60; 30 for
   61-90; 40 beyond 90 days. #}
{% macro uc05_overdue_score(days_overdue) -%}
    case
        when {{ days_overdue }} > 90 then 40
        when {{ days_overdue }} > 60 then 30
        when {{ days_overdue }} > 30 then 20
        when {{ days_overdue }} > 0 then 10
        else 0
    end
{%- endmacro %}

{# Amount (0-30): the open balance against var('uc05_amount_bands_vnd') = [high, mid, low]
   (defaults 100M, 30M, 5M VND): >= high 30, >= mid 20, >= low 10, else 0. #}
{% macro uc05_amount_score(outstanding_vnd) -%}
    {%- set bands = var('uc05_amount_bands_vnd') -%}
    case
        when {{ outstanding_vnd }} >= {{ bands[0] }} then 30
        when {{ outstanding_vnd }} >= {{ bands[1] }} then 20
        when {{ outstanding_vnd }} >= {{ bands[2] }} then 10
        else 0
    end
{%- endmacro %}

{# Risk, payment history (0-15): share of the customer's recently settled invoices paid
   after due: >= 50 % 15, >= 25 % 8, else 0 (no history: 0). #}
{% macro uc05_history_points(share_settled_late) -%}
    case
        when {{ share_settled_late }} >= 0.5 then 15
        when {{ share_settled_late }} >= 0.25 then 8
        else 0
    end
{%- endmacro %}

{# Risk, credit use (0-15): customer's total open balance / credit limit: > 100 % 15,
   >= 80 % 8, else 0 (no limit: 0). #}
{% macro uc05_credit_points(credit_utilisation) -%}
    case
        when {{ credit_utilisation }} > 1.0 then 15
        when {{ credit_utilisation }} >= 0.8 then 8
        else 0
    end
{%- endmacro %}
