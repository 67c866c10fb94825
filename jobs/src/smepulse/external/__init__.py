"""External reference data for the ``external-sync`` pipeline.

Two ingest stages write bronze tables beside the business's own data (same layout as the
bronze contract, ``<root>/<table>/ingest_date=YYYY-MM-DD/*.parquet``):

* ``ingest-worldbank`` (:mod:`.worldbank`): World Bank macro indicators for one country,
  incrementally (new years and revised values only), with an offline fallback.
* ``ingest-provinces`` (:mod:`.provinces`): Vietnam's provinces and wards (the map in force
  since 2025) and the mapping from the former 63 provinces.

dbt (tag ``external``) stages them into silver and builds ``gold.dim_province`` and the yearly
macro-indicator table.
"""
