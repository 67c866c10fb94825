{#- Date/time helpers with a default and per-adapter variants (adapter.dispatch). -#}

{# A UTC timestamp column as a zone-less TIMESTAMP (the house convention for *_at). #}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'smepulse')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    cast({{ column }} as timestamp)
{%- endmacro %}

{% macro trino__utc_timestamp(column) -%}
    cast({{ column }} as timestamp(6))
{%- endmacro %}


{# The local calendar date (business_timezone()) of a UTC timestamp. #}
{% macro local_date(utc_column) -%}
    {{ return(adapter.dispatch('local_date', 'smepulse')(utc_column)) }}
{%- endmacro %}

{% macro default__local_date(utc_column) -%}
    cast({{ utc_column }} as date)
{%- endmacro %}

{% macro duckdb__local_date(utc_column) -%}
    cast(timezone('{{ business_timezone() }}', timezone('UTC', {{ utc_column }})) as date)
{%- endmacro %}

{% macro trino__local_date(utc_column) -%}
    cast(at_timezone(with_timezone({{ utc_column }}, 'UTC'), '{{ business_timezone() }}') as date)
{%- endmacro %}


{# ISO day of week: 1 = Monday ... 7 = Sunday. #}
{% macro iso_day_of_week(date_column) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'smepulse')(date_column)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_column) -%}
    extract(isodow from {{ date_column }})
{%- endmacro %}

{% macro trino__iso_day_of_week(date_column) -%}
    day_of_week({{ date_column }})
{%- endmacro %}


{# ISO week number. #}
{% macro iso_week(date_column) -%}
    {{ return(adapter.dispatch('iso_week', 'smepulse')(date_column)) }}
{%- endmacro %}

{% macro default__iso_week(date_column) -%}
    extract(week from {{ date_column }})
{%- endmacro %}

{% macro trino__iso_week(date_column) -%}
    week_of_year({{ date_column }})
{%- endmacro %}


{#
  One row per calendar day: `<alias>.<column>` for every day from start_expr to end_expr
  (inclusive), joined laterally to `from_relation` (a CTE with one row holding the bounds).
#}
{% macro days_between(from_relation, start_expr, end_expr, column='date_day') -%}
    {{ return(adapter.dispatch('days_between', 'smepulse')(from_relation, start_expr, end_expr, column)) }}
{%- endmacro %}

{% macro default__days_between(from_relation, start_expr, end_expr, column) -%}
    select cast(day_series.{{ column }} as date) as {{ column }}
    from {{ from_relation }}
    cross join unnest(generate_series(
        cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp), interval 1 day
    )) as day_series ({{ column }})
{%- endmacro %}

{% macro trino__days_between(from_relation, start_expr, end_expr, column) -%}
    select day_series.{{ column }}
    from {{ from_relation }}
    cross join unnest(sequence(
        cast({{ start_expr }} as date), cast({{ end_expr }} as date), interval '1' day
    )) as day_series ({{ column }})
{%- endmacro %}
