"""The JSON log lines a container writes: one object per record, fields as documented."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from smepulse.logs import JsonFormatter, setup_logging
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def _record(
    msg: str, *args: object, level: int = logging.INFO, **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("smepulse.stage", level, "stage.py", 1, msg, args, None)
    record.created, record.msecs = 1751241600.25, 250.0  # 2025-06-30T00:00:00.250 UTC
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_record_with_plain_extras() -> None:
    line = JsonFormatter().format(
        _record(
            "wrote %d rows to %s",
            30,
            "gold.ml_cashflow_forecast",
            stage="uc09-forecast",
            attempt=2,
            tags=["a", "b"],
            note=None,
            obj=object(),
            _hidden=1,
        )
    )
    assert json.loads(line) == {
        "time": "2025-06-30T00:00:00.250Z",
        "level": "info",
        "logger": "smepulse.stage",
        "message": "wrote 30 rows to gold.ml_cashflow_forecast",
        "stage": "uc09-forecast",
        "attempt": 2,
        "tags": ["a", "b"],
        "note": None,
    }
    assert "\n" not in line


def test_non_ascii_stays_readable_and_exceptions_are_one_field() -> None:
    try:
        raise RuntimeError("Tết")
    except RuntimeError:
        record = _record("lỗi ở %s", "Hà Nội", level=logging.ERROR)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert "Hà Nội" in line  # not \\u escapes
    assert doc["level"] == "error" and doc["message"] == "lỗi ở Hà Nội"
    assert doc["exception"].startswith("Traceback") and doc["exception"].endswith(
        "RuntimeError: Tết"
    )
    assert set(doc) == {"time", "level", "logger", "message", "exception"}


def test_records_go_to_the_current_stderr_after_it_was_swapped_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CLI run in-process (a test runner) swaps sys.stderr and closes it afterwards; records
    # logged later must reach the stderr of that moment, not raise "I/O on closed file".
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging(Settings(log_format="text"))
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("smepulse.test").warning("after the swap")
    assert second.getvalue().rstrip().endswith("WARNING smepulse.test: after the swap")
