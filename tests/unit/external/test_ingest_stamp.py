"""External ingests stamp their rows as known on the run's logical date (point in time)."""

from __future__ import annotations

import datetime as dt

import pytest

from smepulse.external.bronze_io import ingest_stamp
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def test_a_run_for_a_past_date_stamps_the_last_second_of_that_local_day() -> None:
    # 30 June 2026 ends at midnight in Ho Chi Minh City (UTC+7): 17:00 UTC; one second before.
    settings = Settings(logical_date=dt.date(2026, 6, 30), timezone="Asia/Ho_Chi_Minh")
    assert ingest_stamp(settings) == dt.datetime(2026, 6, 30, 16, 59, 59, tzinfo=dt.UTC)


def test_a_run_for_a_future_date_stamps_wall_clock_now() -> None:
    settings = Settings(logical_date=dt.date(2099, 1, 1), timezone="Asia/Ho_Chi_Minh")
    before = dt.datetime.now(dt.UTC)
    stamp = ingest_stamp(settings)
    assert before <= stamp <= dt.datetime.now(dt.UTC)
