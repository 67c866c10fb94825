"""Reading and writing the external bronze tables.

Writes go through the bronze store (``smepulse.bronze.store``), which owns the layout
``<root>/<table>/ingest_date=YYYY-MM-DD/*.parquet`` for a local folder or S3. Reads of earlier
ingests (the incremental World Bank diff, the "unchanged?" check of the provinces) list and
read the same files through the store, adding ``ingest_date`` (DATE) from the partition folder.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from smepulse.settings import Settings


def ingest_stamp(settings: Settings) -> dt.datetime:
    """The ``updated_at`` of rows an external ingest writes for the run's logical date D.

    Wall-clock now, but never later than the last instant a run for D reads (local midnight
    after D, in the business time zone): a run for a past date (a backfill, or the offline demo
    whose end date is yesterday) stamps its rows as known on D, so the point-in-time reads of
    that same date (``dbt/macros/as_of_date.sql``) see what it wrote.
    """
    from smepulse.bronze.validate import cutoff_utc

    end_of_day = cutoff_utc(settings.business_date, settings.timezone, 0.0)
    return min(dt.datetime.now(dt.UTC), end_of_day - dt.timedelta(seconds=1))


def write(settings: Settings, table: str, ingest_date: dt.date, data: pa.Table) -> None:
    """Write ``data`` as the ``ingest_date`` partition of bronze ``table``."""
    from smepulse.bronze.store import open_store

    open_store(settings).write_table(table, ingest_date, data)


def read_ingests(settings: Settings, table: str) -> pa.Table | None:
    """Every row of every ingest of bronze ``table`` plus ``ingest_date``; None if none exist."""
    from smepulse.bronze.store import open_store

    store = open_store(settings)
    parts: list[pa.Table] = []
    for file in store.list_files(table):
        data = store.read_file(file.uri)
        if "ingest_date" in data.column_names:  # pyarrow infers it from the hive folder name
            data = data.drop_columns(["ingest_date"])
        dates = pa.array([file.ingest_date] * data.num_rows, pa.date32())
        parts.append(data.append_column("ingest_date", dates))
    if not parts:
        return None
    # Files written by older versions may lack a later column: align by name, nulls for gaps.
    return pa.concat_tables(parts, promote_options="default")
