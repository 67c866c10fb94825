"""The warehouse behind a small interface: DuckDB (embedded default) or Trino (cluster).

Stages read gold/silver tables as DataFrames and write their outputs with
:meth:`Warehouse.replace_table`, which swaps the new table in atomically: readers see the old
table or the new one, never a half-written one, and a failure leaves the old table as it was.

DuckDB lets one process at a time open a database file for writing. Parallel stages (uc09 ∥
uc10) therefore take turns through an advisory file lock beside the database: shared for
readers, exclusive for writers (dbt included). A waiting process logs who it waits for instead
of crashing on DuckDB's "could not set lock".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from smepulse.errors import StageError
from smepulse.settings import Settings

log = logging.getLogger(__name__)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


class Warehouse(Protocol):
    """What stages need from a warehouse."""

    def query(self, sql: str) -> pd.DataFrame:
        """Run a read-only query and return its rows."""
        ...

    def table_exists(self, schema: str, table: str) -> bool: ...

    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        """Create or atomically replace ``schema.table`` with ``frame``'s rows."""
        ...


@contextlib.contextmanager
def duckdb_lock(path: Path, *, exclusive: bool, timeout: float, holder: str = "") -> Iterator[None]:
    """Advisory lock beside a DuckDB file: shared for readers, exclusive for writers.

    The lock is filelock's cross-process :class:`~filelock.ReadWriteLock` on
    ``<file>.rwlock``. When another process holds it, one line says so (naming ``path``), then
    this waits up to ``timeout`` seconds in all and raises :class:`StageError`.
    """
    from filelock import ReadWriteLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    # Not "<file>.lock": earlier versions kept a plain-text flock file there, and this lock
    # is an SQLite database.
    lock = ReadWriteLock(path.with_name(path.name + ".rwlock"), is_singleton=False)
    acquire = lock.acquire_write if exclusive else lock.acquire_read
    start = time.monotonic()
    try:
        try:
            acquire(blocking=False)
        except Timeout:
            log.info(
                "waiting: another stage holds the %s lock on %s (%s)",
                "write" if exclusive else "read",
                path,
                holder or f"waiting up to {timeout:.0f}s",
            )
            try:
                acquire(timeout=max(timeout - (time.monotonic() - start), 0.0))
            except Timeout:
                raise StageError(
                    f"gave up after {timeout:.0f}s waiting for the DuckDB lock on {path} "
                    "(another stage is writing the warehouse)"
                ) from None
        try:
            yield
        finally:
            lock.release()
    finally:
        lock.close()


class DuckDBWarehouse:
    """The embedded warehouse: one DuckDB file, serialised by :func:`duckdb_lock`."""

    def __init__(self, path: Path, lock_timeout: float = 600.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    @contextlib.contextmanager
    def connect(self, *, write: bool) -> Iterator[Any]:
        import duckdb

        if not write and not self.path.exists():
            raise StageError(
                f"warehouse {self.path} does not exist yet: run the daily-etl pipeline first"
            )
        with duckdb_lock(self.path, exclusive=write, timeout=self.lock_timeout, holder="smepulse"):
            con = duckdb.connect(str(self.path), read_only=not write)
            try:
                yield con
            finally:
                con.close()

    def query(self, sql: str) -> pd.DataFrame:
        with self.connect(write=False) as con:
            frame: pd.DataFrame = con.execute(sql).fetchdf()
            return frame

    def table_exists(self, schema: str, table: str) -> bool:
        if not self.path.exists():
            return False
        with self.connect(write=False) as con:
            row = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()
            return bool(row and row[0])

    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        schema, table = _ident(schema), _ident(table)
        with self.connect(write=True) as con:
            con.register("_incoming", frame)
            try:
                # One transaction: readers (who wait on the lock anyway) never see a gap.
                con.execute("begin transaction")
                con.execute(f"create schema if not exists {schema}")
                con.execute(f"create or replace table {schema}.{table} as select * from _incoming")
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise
            finally:
                con.unregister("_incoming")


class TrinoWarehouse:
    """The cluster warehouse: Trino with Iceberg tables (``CREATE OR REPLACE`` is atomic there)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _connect(self) -> Any:
        import trino

        s = self.settings
        auth = (
            trino.auth.BasicAuthentication(s.trino_user, s.trino_password.get_secret_value())
            if s.trino_password
            else None
        )
        return trino.dbapi.connect(  # type: ignore[no-untyped-call]
            host=s.trino_host,
            port=s.trino_port,
            user=s.trino_user,
            catalog=s.trino_catalog,
            http_scheme=s.trino_http_scheme,
            auth=auth,
        )

    def query(self, sql: str) -> pd.DataFrame:
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(sql)
            rows = cur.fetchall()
            cols = [d[0] for d in cur.description or []]
            return pd.DataFrame(rows, columns=cols)
        finally:
            con.close()

    def table_exists(self, schema: str, table: str) -> bool:
        frame = self.query(
            "select count(*) as n from information_schema.tables "
            f"where table_schema = '{_ident(schema)}' and table_name = '{_ident(table)}'"
        )
        return bool(frame.iloc[0, 0])

    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        schema, table = _ident(schema), _ident(table)
        staging = f"{table}__incoming_{uuid.uuid4().hex[:8]}"
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(f"create schema if not exists {schema}")
            cols = ", ".join(f'"{c}" {_trino_type(frame[c])}' for c in frame.columns)
            cur.execute(f"create table {schema}.{staging} ({cols})")
            cur.fetchall()
            placeholders = ", ".join("?" for _ in frame.columns)
            records = [tuple(_trino_value(v) for v in row) for row in frame.itertuples(index=False)]
            for i in range(0, len(records), 500):
                cur.executemany(
                    f"insert into {schema}.{staging} values ({placeholders})", records[i : i + 500]
                )
                cur.fetchall()
            cur.execute(
                f"create or replace table {schema}.{table} as select * from {schema}.{staging}"
            )
            cur.fetchall()
            cur.execute(f"drop table if exists {schema}.{staging}")
            cur.fetchall()
        finally:
            con.close()


def _trino_type(series: pd.Series) -> str:
    """The Trino column type for a DataFrame column (money stays decimal, never double)."""
    kind = series.dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "bigint"
    if kind == "f":
        return "double"
    if kind == "M":
        return (
            "timestamp(6) with time zone" if getattr(series.dtype, "tz", None) else "timestamp(6)"
        )
    sample = series.dropna()[:50]
    if len(sample) and all(isinstance(v, decimal.Decimal) for v in sample):
        scale = max(max(-int(v.as_tuple().exponent), 0) for v in sample)
        return f"decimal(38, {scale})"
    if len(sample) and all(isinstance(v, dt.datetime) for v in sample):
        return "timestamp(6) with time zone" if sample.iloc[0].tzinfo else "timestamp(6)"
    if len(sample) and all(isinstance(v, dt.date) for v in sample):
        return "date"
    return "varchar"


def _trino_value(value: Any) -> Any:
    """A DataFrame cell as a value the Trino client binds (NaN/NaT become NULL)."""
    if value is None or (not isinstance(value, (str, bytes, decimal.Decimal)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar -> Python
    return value


def get_warehouse(settings: Settings) -> Warehouse:
    """The configured warehouse."""
    if settings.warehouse == "trino":
        return TrinoWarehouse(settings)
    return DuckDBWarehouse(settings.warehouse_path, settings.duckdb_lock_timeout_seconds)
