"""validate-bronze: a clean data set passes; each broken-file case fails with a message that
names the file, the key (or row) and the rule."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from smepulse.bronze.store import LocalStore
from smepulse.bronze.validate import run_stage, validate
from smepulse.errors import StageError
from smepulse.settings import Settings

from .conftest import END

pytestmark = pytest.mark.unit


def first_file(settings: Settings, table: str) -> Path:
    return Path(LocalStore(settings.bronze_root).list_files(table)[0].uri)


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    with pq.ParquetFile(path) as handle:
        data = handle.read()
    pq.write_table(change(data), path)


def set_row0(
    data: pa.Table, column: str, value: object, type_: pa.DataType | None = None
) -> pa.Table:
    col = data.column(column)
    values = col.to_pylist()
    values[0] = value
    index = data.schema.get_field_index(column)
    field = data.schema.field(column).with_nullable(True)
    return data.set_column(index, field, pa.array(values, type_ or col.type))


def messages(settings: Settings) -> list[str]:
    result = validate(LocalStore(settings.bronze_root), END)
    return [str(p) for p in result.problems.listed]


def the_one(settings: Settings, rule: str) -> str:
    found = [m for m in messages(settings) if f": {rule}: " in m]
    assert found, f"no {rule} problem reported; got: {messages(settings)[:5]}"
    return found[0]


def test_clean_data_passes(bronze_copy: Settings) -> None:
    run_stage(bronze_copy)
    result = json.loads((bronze_copy.home / "validation" / f"{END}.json").read_text())
    assert result["ok"] is True and result["problem_count"] == 0
    assert result["rows"]["ar_invoices"] > 0 and len(result["files"]) >= 10


def test_failure_raises_stage_error_and_writes_json(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoices")
    rewrite(path, lambda d: set_row0(d, "status", "unpaid"))
    with pytest.raises(
        StageError, match=r"bronze validation failed: 1 problems in 1 files \(first: .*bad_enum"
    ):
        run_stage(bronze_copy)
    result = json.loads((bronze_copy.home / "validation" / f"{END}.json").read_text())
    assert result["ok"] is False and result["problem_counts"] == {"bad_enum": 1}
    assert result["problems"][0]["file"] == str(path)


def test_missing_column(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoices")
    rewrite(path, lambda d: d.drop_columns(["channel"]))
    msg = the_one(bronze_copy, "missing_column")
    assert msg.startswith(str(path)) and "'channel'" in msg


def test_extra_column(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "products")
    rewrite(path, lambda d: d.append_column("colour", pa.array(["red"] * d.num_rows)))
    assert "'colour'" in the_one(bronze_copy, "extra_column")


def test_wrong_type(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "customers")
    rewrite(path, lambda d: d.set_column(6, "payment_terms_days", pc.cast(d.column(6), pa.int64())))
    msg = the_one(bronze_copy, "wrong_type")
    assert msg.startswith(str(path))
    assert "'payment_terms_days': expected int32, found int64" in msg


def test_duplicate_key_within_one_ingest(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "customers")
    with pq.ParquetFile(path) as handle:
        key = handle.read().column("customer_id")[0].as_py()
    rewrite(path, lambda d: pa.concat_tables([d, d.slice(0, 1)]))
    msg = the_one(bronze_copy, "duplicate_key")
    assert msg.startswith(str(path)) and f"customer_id={key}" in msg and "2 times" in msg


def test_same_key_on_two_ingest_dates_is_allowed(bronze_copy: Settings) -> None:
    store = LocalStore(bronze_copy.bronze_root)
    files = store.list_files("suppliers")
    data = store.read_file(files[0].uri)
    store.write_table("suppliers", END, data, part="part-00009")
    assert not messages(bronze_copy)


def test_null_key(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_payments")
    rewrite(path, lambda d: set_row0(d, "payment_id", None))
    msg = the_one(bronze_copy, "null_key")
    assert msg == f"{path}: row 0: null_key: payment_id is null"


def test_orphan_foreign_key(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoice_lines")
    with pq.ParquetFile(path) as handle:
        row = handle.read().slice(0, 1).to_pylist()[0]
    rewrite(path, lambda d: set_row0(d, "product_id", "PRD-99999"))
    msg = the_one(bronze_copy, "orphan_foreign_key")
    assert msg.startswith(f"{path}: invoice_id={row['invoice_id']}, line_no={row['line_no']}: ")
    assert "'PRD-99999' not found in products.product_id" in msg


def test_negative_quantity(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoice_lines")
    rewrite(path, lambda d: set_row0(d, "quantity", Decimal("-1.000")))
    msg = the_one(bronze_copy, "negative_value")
    assert (
        msg.startswith(str(path))
        and "invoice_id=" in msg
        and "quantity = -1.000 is negative" in msg
    )


def test_due_date_before_issue_date(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ap_bills")
    with pq.ParquetFile(path) as handle:
        first = handle.read().slice(0, 1).to_pylist()[0]
    rewrite(path, lambda d: set_row0(d, "due_date", first["issue_date"] - dt.timedelta(days=1)))
    msg = the_one(bronze_copy, "due_before_issue")
    assert msg.startswith(f"{path}: bill_id={first['bill_id']}: due_before_issue: due_date ")


def test_future_dates(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "bank_transactions")
    later = dt.datetime(2025, 7, 2, 3, 0, tzinfo=dt.UTC)
    rewrite(path, lambda d: set_row0(d, "txn_at", later))
    msg = the_one(bronze_copy, "future_date")
    assert msg.startswith(f"{path}: txn_id=") and "after the logical date 2025-06-30" in msg


def test_timestamps_up_to_the_end_of_the_logical_day_are_fine(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "bank_transactions")
    late_evening_local = dt.datetime(
        2025, 6, 30, 16, 59, tzinfo=dt.UTC
    )  # 23:59 in Hồ Chí Minh City
    rewrite(path, lambda d: set_row0(d, "txn_at", late_evening_local))
    assert not [m for m in messages(bronze_copy) if "future_date" in m]


def test_bad_enum(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "customers")
    rewrite(path, lambda d: set_row0(d, "province_code", "999"))
    msg = the_one(bronze_copy, "bad_enum")
    assert msg.startswith(f"{path}: customer_id=") and "province_code = '999'" in msg


def test_corrupt_file(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ap_payments")
    path.write_bytes(path.read_bytes()[:100])
    msg = the_one(bronze_copy, "unreadable_file")
    assert msg.startswith(f"{path}: -: unreadable_file: not a readable Parquet file")


def test_missing_table(bronze_copy: Settings) -> None:
    shutil.rmtree(Path(bronze_copy.bronze_root) / "bank_accounts")
    msg = the_one(bronze_copy, "missing_table")
    assert "bank_accounts/" in msg
    assert not [m for m in messages(bronze_copy) if "orphan_foreign_key" in m]


def test_ingest_dates_after_the_logical_date_are_not_read(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoices")
    (path.parent.parent / "ingest_date=2025-07-15").mkdir()
    (path.parent.parent / "ingest_date=2025-07-15" / "part-00000.parquet").write_bytes(b"junk")
    assert not messages(bronze_copy)


def test_problems_are_bounded_but_counted(bronze_copy: Settings) -> None:
    path = first_file(bronze_copy, "ar_invoice_lines")
    rewrite(
        path,
        lambda d: d.set_column(
            2, pa.field("product_id", pa.string()), pa.array(["nope"] * d.num_rows)
        ),
    )
    result = validate(LocalStore(bronze_copy.bronze_root), END)
    assert result.problems.counts["orphan_foreign_key"] > 20
    assert sum(p.rule == "orphan_foreign_key" for p in result.problems.listed) == 20
