"""validate-bronze, point in time: an extract taken at 03:00 local (after the run's cutoff)
passes with one warning per late row; event dates in the future and wrong clocks still fail
naming file, key and rule; clean ingest dates are not read again (cache by checksum)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smepulse.bronze.store import LocalStore
from smepulse.bronze.validate import run_stage, validate
from smepulse.settings import Settings

from .conftest import END

pytestmark = pytest.mark.unit

# 03:00 on 1 July 2025 in Hồ Chí Minh City (UTC+7), written by hand: 30 June 20:00 UTC.
THREE_AM_NEXT_DAY = dt.datetime(2025, 6, 30, 20, 0, tzinfo=dt.UTC)
# The default cutoff of 30 June: local midnight (17:00 UTC) + 2 h extract lag.
CUTOFF = dt.datetime(2025, 6, 30, 19, 0, tzinfo=dt.UTC)


def last_ingest_files(settings: Settings) -> dict[str, Path]:
    """The newest ingest's file of every table that has an updated_at column."""
    out = {}
    for table_dir in sorted(Path(settings.bronze_root).iterdir()):
        path = table_dir / f"ingest_date={END}" / "part-00000.parquet"
        if path.exists() and "updated_at" in pq.read_schema(path).names:
            out[table_dir.name] = path
    return out


def stamp_all(path: Path, stamp: dt.datetime) -> int:
    """Set updated_at of every row of ``path`` to ``stamp``; return the row count."""
    data = pq.read_table(path, partitioning=None)
    index = data.schema.get_field_index("updated_at")
    column = pa.array([stamp] * data.num_rows, data.schema.field(index).type)
    pq.write_table(data.set_column(index, data.schema.field(index), column), path)
    return data.num_rows


def set_first(path: Path, column: str, value: object) -> str:
    """Set ``column`` of the first row; return that row's first column (its key)."""
    data = pq.read_table(path, partitioning=None)
    index = data.schema.get_field_index(column)
    values = data.column(column).to_pylist()
    values[0] = value
    new = pa.array(values, data.schema.field(index).type)
    pq.write_table(data.set_column(index, data.schema.field(index), new), path)
    return str(data.column(0)[0].as_py())


def test_an_extract_at_three_am_passes_with_one_warning_per_late_row(
    bronze_copy: Settings,
) -> None:
    files = last_ingest_files(bronze_copy)
    assert {"ar_invoices", "ar_payments", "bank_transactions"} <= set(files)
    late_rows = sum(stamp_all(path, THREE_AM_NEXT_DAY) for path in files.values())

    run_stage(bronze_copy)  # does not raise: warnings only
    result = json.loads((bronze_copy.home / "validation" / f"{END}.json").read_text())
    assert result["ok"] is True and result["problem_count"] == 0
    assert result["warning_counts"] == {"late_stamp": late_rows}
    assert result["cutoff_utc"] == CUTOFF.isoformat()
    first = result["warnings"][0]
    assert first["file"] in {str(p) for p in files.values()}
    assert "waits for the next day's run" in first["detail"]

    # The next day those rows are inside the interval: no warning, nothing wrong.
    next_day = validate(LocalStore(bronze_copy.bronze_root), END + dt.timedelta(days=1))
    assert next_day.ok and next_day.warnings.total == 0


def test_a_longer_extract_lag_takes_the_three_am_rows_in(bronze_copy: Settings) -> None:
    files = last_ingest_files(bronze_copy)
    stamp_all(files["ar_invoices"], THREE_AM_NEXT_DAY)
    result = validate(LocalStore(bronze_copy.bronze_root), END, extract_lag_hours=4)
    assert result.ok and result.warnings.total == 0


def test_an_invoice_dated_next_year_fails_naming_file_key_and_rule(
    bronze_copy: Settings,
) -> None:
    path = last_ingest_files(bronze_copy)["ar_invoices"]
    key = set_first(path, "issue_date", dt.date(2026, 1, 15))
    set_first(path, "due_date", dt.date(2026, 2, 15))
    result = validate(LocalStore(bronze_copy.bronze_root), END)
    assert not result.ok and result.problems.counts == {"future_date": 1}
    assert str(result.problems.listed[0]) == (
        f"{path}: invoice_id={key}: future_date: issue_date 2026-01-15 is after the logical "
        "date 2025-06-30"
    )


def test_a_late_stamp_does_not_excuse_a_future_event_date(bronze_copy: Settings) -> None:
    path = last_ingest_files(bronze_copy)["ar_invoices"]
    stamp_all(path, THREE_AM_NEXT_DAY)
    key = set_first(path, "issue_date", dt.date(2026, 1, 15))
    set_first(path, "due_date", dt.date(2026, 2, 15))
    result = validate(LocalStore(bronze_copy.bronze_root), END)
    assert result.problems.counts == {"future_date": 1}
    assert str(result.problems.listed[0]).startswith(f"{path}: invoice_id={key}: future_date:")


def test_an_audit_stamp_days_after_its_ingest_is_a_wrong_clock(bronze_copy: Settings) -> None:
    path = last_ingest_files(bronze_copy)["ar_payments"]
    key = set_first(path, "updated_at", dt.datetime(2025, 7, 5, 9, 0, tzinfo=dt.UTC))
    result = validate(LocalStore(bronze_copy.bronze_root), END)
    assert result.problems.counts == {"future_date": 1}
    assert str(result.problems.listed[0]).startswith(
        f"{path}: payment_id={key}: future_date: updated_at 2025-07-05 09:00:00+00:00 is more "
        "than a day after ingest date 2025-06-30"
    )


def test_clean_ingest_dates_are_not_read_again_until_a_file_changes(
    bronze_copy: Settings,
) -> None:
    store = LocalStore(bronze_copy.bronze_root)
    cache = bronze_copy.home / "validation" / "cache.json"
    n_files = sum(len(store.list_files(t)) for t in store.tables())

    first = validate(store, END, cache_path=cache)
    assert first.ok and first.cached_files == 0
    again = validate(store, END, cache_path=cache)
    assert again.ok and again.cached_files == n_files
    # A verdict for 30 June says nothing about an earlier day (stricter limits).
    earlier = validate(store, END - dt.timedelta(days=1), cache_path=cache)
    assert earlier.cached_files == 0

    # A re-delivered file with a new checksum is read again, and its problem found.
    path = next(iter(last_ingest_files(bronze_copy).values()))
    set_first(path, "updated_at", dt.datetime(2025, 7, 9, tzinfo=dt.UTC))
    changed = validate(store, END, cache_path=cache)
    assert changed.problems.counts == {"future_date": 1}
    assert changed.cached_files == n_files - 1
