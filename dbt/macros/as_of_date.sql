{#
  The run's per-invocation values: logical date, business time zone, extract lag.

  The runner hands them over as environment variables (smepulse.dbt_runner.run_env():
  SMEPULSE_LOGICAL_DATE, SMEPULSE_TIMEZONE, SMEPULSE_EXTRACT_LAG_HOURS), not as --vars: dbt
  hashes the --vars into its partial-parse state, so a new logical date each run would throw
  the saved parse (and the image's baked one) away and make every stage parse the whole
  project again. They are read only when executing (`execute`): an env_var() read while
  parsing is recorded against the model's file, and a new value would reparse that file.
  Parsing needs no value: the rendered SQL is discarded then, only ref/source/config count.

  A --vars value of the same name still wins (a developer's `dbt build --vars`, or a test's
  extra_vars), at the price of a full parse.
#}
{% macro run_value(name, env_name, default) -%}
    {%- set override = var(name, none) -%}
    {%- if override is not none -%}
        {{ return(override) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return(default) }}
    {%- endif -%}
    {{ return(env_var(env_name, default)) }}
{%- endmacro %}


{# The business time zone of the SME (bank timestamps are UTC, cash dates are local). #}
{% macro business_timezone() -%}
    {{ return(run_value('business_timezone', 'SMEPULSE_TIMEZONE', 'Asia/Ho_Chi_Minh')) }}
{%- endmacro %}


{#
  The run's business date as a SQL DATE literal: the logical date (YYYY-MM-DD, run_value
  logical_date, from settings.business_date) or, when empty, the warehouse's current date.
  Everything "as of" (open balances, days overdue, the UC05 score) is computed against it,
  so re-running a past logical date reproduces that day's view of the data.
#}
{% macro as_of_date() -%}
    {%- set value = run_value('logical_date', 'SMEPULSE_LOGICAL_DATE', '') -%}
    {%- if value -%}
        {%- if not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("logical_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
        {%- endif -%}
        date '{{ value }}'
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}


{#
  The end of what a run for logical date D may read, as a zone-less UTC TIMESTAMP literal:
  local midnight after D in business_timezone() plus the extract lag hours (an
  extract taken shortly after midnight carries audit stamps of the next local day). Rows whose
  updated_at is at or after it belong to a later run. None when no logical date is set
  (development: read everything).
#}
{% macro as_of_cutoff_utc() -%}
    {%- set value = run_value('logical_date', 'SMEPULSE_LOGICAL_DATE', '') -%}
    {%- if not value -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lag = run_value('extract_lag_hours', 'SMEPULSE_EXTRACT_LAG_HOURS', 2) | float -%}
    {%- if lag < 0 or lag > 48 -%}
        {{ exceptions.raise_compiler_error("extract_lag_hours must be between 0 and 48, got '" ~ lag ~ "'") }}
    {%- endif -%}
    {%- set dt = modules.datetime -%}
    {%- set day = dt.datetime.strptime(value | string, '%Y-%m-%d') -%}
    {%- set local_end = modules.pytz.timezone(business_timezone()).localize(day + dt.timedelta(days=1)) -%}
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
