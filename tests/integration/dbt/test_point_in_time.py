"""Point in time, proven on a real warehouse (DuckDB, and Trino with Iceberg + Hive bronze).

Run the daily dbt stages for D; land later ingests that correct rows of D (an invoice
cancelled, a payment for D booked the next day, a customer's credit limit raised); re-run D:
every column of every gold table hashes the same as in the first run. Rows of D's own ingest
stamped at 03:00 local the next morning (after D's cutoff) are not in D's gold and are in
D+1's, and validate-bronze passes both days (warnings on D only). Once silver is as of D+1,
the ML loaders refuse it for a run of D (training for a past date sees only what was known
then).

The expectation is independent of the code: per-column SHA-256 over the sorted text of the
values, computed here in Python from plain SELECTs, and hand-picked rows that must (not) be
there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smepulse.bronze.store import LocalStore
from smepulse.bronze.validate import validate
from smepulse.dbt_runner import run_build
from smepulse.errors import StageError
from smepulse.ml.data import load_daily_cashflow, load_transactions
from smepulse.settings import Settings
from tests.integration.dbt.bronze_fixture import SCHEMAS, build_rows, write_bronze
from tests.integration.dbt.conftest import DAILY_DBT_STAGES
from tests.services.procs import TrinoServer

pytestmark = pytest.mark.integration

D = dt.date(2026, 6, 30)
# 03:00 on 1 July in Hồ Chí Minh City (UTC+7): 30 June 20:00 UTC, after D's cutoff
# (local midnight 17:00 UTC + the default 2 h extract lag = 19:00 UTC).
THREE_AM_NEXT_DAY = dt.datetime(2026, 6, 30, 20, 0, tzinfo=dt.UTC)
LATE_INVOICE = "INV-LATE-1"


def _write(root: Path, table: str, ingest: dt.date, rows: list[dict[str, Any]], part: str) -> None:
    folder = root / table / f"ingest_date={ingest.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), folder / f"{part}.parquet")


@dataclass(frozen=True)
class Corrections:
    cancelled_invoice: str
    paid_invoice: str
    payment_id: str
    customer_id: str


def write_scenario(root: Path) -> Corrections:
    """The fixture's bronze, plus D's 03:00 extract (a new invoice with its line and payment)."""
    write_bronze(root, D, n_invoices=60)
    first, second = build_rows(D, n_invoices=60)
    invoices = {r["invoice_id"]: r for r in first["ar_invoices"] + second["ar_invoices"]}
    paid = {r["invoice_id"] for r in first["ar_payments"]}
    open_unpaid = sorted(i for i, r in invoices.items() if r["status"] == "open" and i not in paid)
    assert len(open_unpaid) >= 2, "the fixture must hold two open, unpaid invoices"
    line = next(r for r in first["ar_invoice_lines"] if r["invoice_id"] == open_unpaid[0])
    base = invoices[open_unpaid[0]]
    late_invoice = {
        **base,
        "invoice_id": LATE_INVOICE,
        "issue_date": D,
        "due_date": D + dt.timedelta(days=30),
        "updated_at": THREE_AM_NEXT_DAY,
    }
    _write(root, "ar_invoices", D, [late_invoice], "part-late")
    _write(root, "ar_invoice_lines", D, [{**line, "invoice_id": LATE_INVOICE}], "part-late")
    _write(
        root,
        "ar_payments",
        D,
        [
            {
                "payment_id": "PAY-LATE-1",
                "invoice_id": LATE_INVOICE,
                "customer_id": base["customer_id"],
                "payment_date": D,
                "amount_vnd": Decimal(1_000),
                "method": "cash",
                "bank_account_id": None,
                "updated_at": THREE_AM_NEXT_DAY,
            }
        ],
        "part-late",
    )
    customer = next(c for c in first["customers"] if c["customer_id"] == base["customer_id"])
    return Corrections(open_unpaid[0], open_unpaid[1], "PAY-BOOKED-LATER", customer["customer_id"])


def land_corrections(root: Path, fix: Corrections) -> None:
    """Ingests of D+1 and D+2 that change what D looked like."""
    first, second = build_rows(D, n_invoices=60)
    invoices = {r["invoice_id"]: r for r in first["ar_invoices"] + second["ar_invoices"]}
    d1 = dt.datetime.combine(D + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
    d2 = dt.datetime.combine(D + dt.timedelta(days=2), dt.time(9), tzinfo=dt.UTC)
    cancelled = {**invoices[fix.cancelled_invoice], "status": "cancelled", "updated_at": d1}
    partly = {**invoices[fix.paid_invoice], "status": "partially_paid", "updated_at": d1}
    _write(root, "ar_invoices", D + dt.timedelta(days=1), [cancelled, partly], "part-00000")
    _write(
        root,
        "ar_payments",
        D + dt.timedelta(days=1),
        [
            {
                "payment_id": fix.payment_id,
                "invoice_id": fix.paid_invoice,
                "customer_id": partly["customer_id"],
                "payment_date": D,  # a payment made on D, booked the next day
                "amount_vnd": Decimal(1_000_000),
                "method": "cash",
                "bank_account_id": None,
                "updated_at": d1,
            }
        ],
        "part-00000",
    )
    customer = next(c for c in first["customers"] if c["customer_id"] == fix.customer_id)
    raised = {**customer, "credit_limit_vnd": Decimal(999_000_000), "updated_at": d2}
    _write(root, "customers", D + dt.timedelta(days=2), [raised], "part-00000")


@dataclass(frozen=True)
class Warehouse:
    settings_for: Callable[[dt.date], Settings]
    query: Callable[[str], list[tuple[Any, ...]]]
    gold: str  # qualified gold schema, e.g. "gold" or "lakehouse.gold_pit"
    tables_sql: str
    bronze_root: Path


def column_hashes(wh: Warehouse) -> dict[str, dict[str, str]]:
    """Per table, per column: SHA-256 of the sorted text of every value (order-free)."""
    out: dict[str, dict[str, str]] = {}
    for (table,) in wh.query(wh.tables_sql):
        result = wh.query(f"select * from {wh.gold}.{table}")
        names = [r[0] for r in wh.query(_columns_sql(wh, table))]
        assert len(names) == (len(result[0]) if result else len(names))
        columns: dict[str, str] = {}
        for i, name in enumerate(names):
            text = sorted(_canonical(row[i]) for row in result)
            columns[name] = hashlib.sha256("\n".join(text).encode()).hexdigest()
        out[table] = columns
    return out


def _columns_sql(wh: Warehouse, table: str) -> str:
    catalog, _, schema = wh.gold.rpartition(".")
    prefix = f"{catalog}." if catalog else ""
    return (
        f"select column_name from {prefix}information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    )


def _canonical(value: Any) -> str:
    """One spelling per value across drivers (Decimal('1.50') == 1.5, naive == UTC)."""
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        return format(Decimal(str(value)).normalize(), "f")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return repr(value)


def build(wh: Warehouse, day: dt.date) -> None:
    settings = wh.settings_for(day)
    for stage in DAILY_DBT_STAGES:
        result = run_build(settings, stage)
        failed = [o.describe() for o in result.outcomes if o.failed]
        assert result.success, (day, stage, failed, result.error)


def check_point_in_time(wh: Warehouse) -> None:
    fix = write_scenario(wh.bronze_root)
    store = LocalStore(wh.bronze_root)

    on_d = validate(store, D)
    assert on_d.ok, [str(p) for p in on_d.problems.listed]
    assert on_d.warnings.counts == {"late_stamp": 2}  # the late invoice and its payment
    build(wh, D)
    first = column_hashes(wh)
    assert len(first) >= 18 and all(first.values())
    g = wh.gold
    assert not wh.query(f"select 1 from {g}.fct_ar_invoices where invoice_id = '{LATE_INVOICE}'")
    before = wh.query(
        f"select invoice_id, source_status from {g}.fct_ar_invoices "
        f"where invoice_id in ('{fix.cancelled_invoice}', '{fix.paid_invoice}') order by 1"
    )
    assert [r[1] for r in before] == ["open", "open"]

    land_corrections(wh.bronze_root, fix)
    build(wh, D)  # the backfill of D, after the corrections landed
    again = column_hashes(wh)
    differing = {
        f"{t}.{c}" for t, cols in first.items() for c, h in cols.items() if again[t].get(c) != h
    }
    assert again.keys() == first.keys() and not differing, differing

    # The next day sees the 03:00 rows and the D+1 corrections (not yet D+2's).
    on_d1 = validate(store, D + dt.timedelta(days=1))
    assert on_d1.ok and on_d1.warnings.total == 0
    build(wh, D + dt.timedelta(days=1))
    after = wh.query(
        f"select invoice_id, source_status from {g}.fct_ar_invoices "
        f"where invoice_id in ('{fix.cancelled_invoice}', '{fix.paid_invoice}', "
        f"'{LATE_INVOICE}') order by 1"
    )
    assert sorted(after) == sorted(
        [
            (fix.cancelled_invoice, "cancelled"),
            (fix.paid_invoice, "partially_paid"),
            (LATE_INVOICE, "open"),
        ]
    )
    assert wh.query(f"select 1 from {g}.fct_ar_payments where payment_id = '{fix.payment_id}'")
    credit = wh.query(
        f"select credit_limit_vnd from {g}.dim_customer where customer_id = '{fix.customer_id}'"
    )
    assert credit and Decimal(str(credit[0][0])) != Decimal(999_000_000)

    # Silver is now as of D+1: training or predicting for D on it would see D+1's corrections.
    next_day = D + dt.timedelta(days=1)
    for load in (load_daily_cashflow, load_transactions):
        with pytest.raises(StageError) as refused:
            load(wh.settings_for(D), D)
        message = str(refused.value)
        assert "built as of 2026-07-01, after this run's logical date 2026-06-30" in message
        assert "smepulse run daily-etl --date 2026-06-30" in message
        assert not load(wh.settings_for(next_day), next_day).empty


# -- DuckDB ---------------------------------------------------------------------------------


def test_a_backfill_of_d_reproduces_every_gold_column_on_duckdb(tmp_path: Path) -> None:
    def settings_for(day: dt.date) -> Settings:
        return Settings(home=tmp_path, logical_date=day, duckdb_lock_timeout_seconds=120)

    def query(sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(settings_for(D).warehouse_path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    check_point_in_time(
        Warehouse(
            settings_for,
            query,
            "gold",
            "select table_name from information_schema.tables where table_schema = 'gold' "
            "order by 1",
            tmp_path / "bronze",
        )
    )


# -- Trino ----------------------------------------------------------------------------------


@pytest.fixture
def trino_warehouse(trino_server: TrinoServer, tmp_path: Path) -> Iterator[Warehouse]:
    import trino

    # Own silver/gold schemas: the session's Trino is shared with other dbt tests. Bronze is
    # the Hive schema every Trino test registers at local:///bronze (the first registration
    # fixes the location), holding the same fixture for D; what this test adds is removed after.
    bronze = trino_server.lake_root / "bronze"
    silver, gold = "silver_pit", "gold_pit"

    def settings_for(day: dt.date) -> Settings:
        return Settings(
            home=tmp_path,
            logical_date=day,
            warehouse="trino",
            trino_host=trino_server.host,
            trino_port=trino_server.port,
            trino_catalog="lakehouse",
            trino_bronze_catalog="bronze",
            trino_bronze_location="local:///bronze",
            bronze_uri=str(bronze),
            silver_schema=silver,
            gold_schema=gold,
        )

    conn = trino.dbapi.connect(host=trino_server.host, port=trino_server.port, user="t")

    def query(sql: str) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]  # Trino rows are lists; DuckDB's tuples

    yield Warehouse(
        settings_for,
        query,
        f"lakehouse.{gold}",
        "select table_name from lakehouse.information_schema.tables "
        f"where table_schema = '{gold}' order by 1",
        bronze,
    )
    conn.close()
    for path in bronze.glob("*/ingest_date=*/part-late.parquet"):
        path.unlink()
    for folder in bronze.glob("*/ingest_date=*"):
        if dt.date.fromisoformat(folder.name.removeprefix("ingest_date=")) > D:
            shutil.rmtree(folder)


def test_a_backfill_of_d_reproduces_every_gold_column_on_trino(
    trino_warehouse: Warehouse,
) -> None:
    check_point_in_time(trino_warehouse)
