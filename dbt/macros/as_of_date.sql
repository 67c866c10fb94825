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


{#
  The end of what a run for logical date D may read, as a zone-less UTC TIMESTAMP literal:
  local midnight after D in var('business_timezone') plus var('extract_lag_hours') (an
  extract taken shortly after midnight carries audit stamps of the next local day). Rows whose
  updated_at is at or after it belong to a later run. None when no logical date is set
  (development: read everything).
#}
{% macro as_of_cutoff_utc() -%}
    {%- set value = var('logical_date', '') -%}
    {%- if not value -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lag = var('extract_lag_hours', 2) | float -%}
    {%- if lag < 0 or lag > 48 -%}
        {{ exceptions.raise_compiler_error("var extract_lag_hours must be between 0 and 48, got '" ~ lag ~ "'") }}
    {%- endif -%}
    {%- set dt = modules.datetime -%}
    {%- set day = dt.datetime.strptime(value | string, '%Y-%m-%d') -%}
    {%- set local_end = modules.pytz.timezone(var('business_timezone')).localize(day + dt.timedelta(days=1)) -%}
    {%- set cutoff = (local_end + dt.timedelta(hours=lag)).astimezone(modules.pytz.utc) -%}
    {{ return("timestamp '" ~ cutoff.strftime('%Y-%m-%d %H:%M:%S') ~ "'") }}
{%- endmacro %}


{#
  The point-in-time predicate on a bronze relation (alias `versions` in dedupe_latest): only
  ingests dated on or before the logical date, and, for tables with an audit stamp, only
  versions stamped before as_of_cutoff_utc(). Without a logical date: true.
#}
{% macro as_of_predicate(stamp_column='updated_at', alias='versions') -%}
    {%- set cutoff = as_of_cutoff_utc() -%}
    {%- if cutoff is none -%}
        1 = 1
    {%- else -%}
        cast({{ alias }}.ingest_date as date) <= {{ as_of_date() }}
        {%- if stamp_column %}
        and {{ utc_timestamp(alias ~ '.' ~ stamp_column) }} < {{ cutoff }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
