"""The warehouse interface on both engines: DuckDB (embedded) and a real Trino (cluster).

Stages write their outputs through ``replace_table``; the same frame must come back with its
types intact (money as decimal, dates as dates) and a replacement must be whole."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.warehouse import DuckDBWarehouse, TrinoWarehouse, duckdb_lock
from tests.services.procs import TrinoServer

pytestmark = pytest.mark.integration


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "txn_id": [f"T{i}" for i in range(n)],
            "amount_vnd": [decimal.Decimal(1_000_000 * (i + 1)) for i in range(n)],
            "score": [0.5 + i / 10 for i in range(n)],
            "rank": list(range(1, n + 1)),
            "is_alert": [i % 2 == 0 for i in range(n)],
            "forecast_date": [dt.date(2026, 7, 1) + dt.timedelta(days=i) for i in range(n)],
            "created_at": pd.to_datetime(["2026-06-30T02:00:00Z"] * n, utc=True),
        }
    )


def test_trino_replace_table_round_trip(trino_server: TrinoServer) -> None:
    schema = f"probe_{uuid.uuid4().hex[:8]}"  # the session's Trino is shared with dbt tests
    wh = TrinoWarehouse(
        Settings(
            warehouse="trino",
            trino_host=trino_server.host,
            trino_port=trino_server.port,
            trino_catalog="lakehouse",
        )
    )
    wh.replace_table(schema, "wh_probe", _frame(3))
    wh.replace_table(schema, "wh_probe", _frame(2))  # replaced, not appended
    assert wh.table_exists(schema, "wh_probe")
    back = wh.query(f"select * from {schema}.wh_probe order by rank")
    assert list(back["txn_id"]) == ["T0", "T1"]
    assert list(back["amount_vnd"]) == [decimal.Decimal(1_000_000), decimal.Decimal(2_000_000)]
    assert list(back["forecast_date"]) == [dt.date(2026, 7, 1), dt.date(2026, 7, 2)]
    types = wh.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = 'wh_probe'"
    ).set_index("column_name")["data_type"]
    assert types["amount_vnd"].startswith("decimal")
    assert types["forecast_date"] == "date"
    assert types["is_alert"] == "boolean"
    staging = wh.query(
        "select table_name from information_schema.tables "
        f"where table_schema = '{schema}' and table_name like 'wh_probe__incoming%'"
    )
    assert staging.empty, "the staging table is dropped after the swap"


def test_duckdb_replace_table_round_trip_and_lock(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", lock_timeout=30)
    wh.replace_table("gold", "wh_probe", _frame(3))
    wh.replace_table("gold", "wh_probe", _frame(2))
    back = wh.query("select * from gold.wh_probe order by rank")
    assert len(back) == 2 and back["amount_vnd"].iloc[1] == decimal.Decimal(2_000_000)

    # A writer waits for another process's exclusive lock instead of failing.
    released = threading.Event()

    def hold() -> None:
        with duckdb_lock(wh.path, exclusive=True, timeout=5):
            time.sleep(1.0)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    wh.replace_table("gold", "wh_probe", _frame(1))
    assert released.is_set()
    holder.join()
    assert len(wh.query("select * from gold.wh_probe")) == 1


HOLD = """
import sys, time
from pathlib import Path
from smepulse.warehouse import duckdb_lock
with duckdb_lock(Path(sys.argv[1]), exclusive=sys.argv[2] == "write", timeout=5):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def test_duckdb_lock_is_shared_for_readers_and_exclusive_for_writers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "w.duckdb"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), "read", "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        start = time.monotonic()
        with duckdb_lock(db, exclusive=False, timeout=2):  # another reader: no wait
            assert time.monotonic() - start < 1.5
        caplog.set_level("INFO", logger="smepulse.warehouse")
        with (
            pytest.raises(
                StageError,
                match=rf"^gave up after 1s waiting for the DuckDB lock on {db} \(another stage",
            ),
            duckdb_lock(db, exclusive=True, timeout=1.0, holder="uc10-detect"),
        ):
            pass
        assert f"another stage holds the write lock on {db} (uc10-detect)" in caplog.text
    finally:
        other.wait(timeout=30)
    with duckdb_lock(db, exclusive=True, timeout=2):  # free again once the reader is gone
        pass
