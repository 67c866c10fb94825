"""The status document: condition transitions, duration, compact stage lines."""

from __future__ import annotations

import datetime as dt

import pytest

from smepulse_operator.status import (
    RunStatus,
    StageRecord,
    build_status,
    current_stage,
    format_duration,
    stage_records,
    status_changed,
    succeeded_condition,
)

pytestmark = pytest.mark.unit

T = dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (245, "4m05s"), (7380, "2h03m"), (3 * 86400 + 4 * 3600, "3d04h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_condition_keeps_its_transition_time_while_status_is_unchanged() -> None:
    first = succeeded_condition([], "Unknown", "Running", "1/3", 1, T)
    later = succeeded_condition(
        [first], "Unknown", "Running", "2/3", 1, T + dt.timedelta(minutes=5)
    )
    assert later["lastTransitionTime"] == first["lastTransitionTime"] == "2025-01-01T02:00:00Z"
    done = succeeded_condition([later], "True", "Succeeded", "3/3", 1, T + dt.timedelta(minutes=9))
    assert done["lastTransitionTime"] == "2025-01-01T02:09:00Z"


def test_stage_records_round_trip_and_stay_compact() -> None:
    rec = StageRecord("dbt-silver", "Failed", "r-dbt-silver-2", 2, T, T, "x" * 5000)
    doc = rec.to_dict()
    assert set(doc) == {
        "name",
        "phase",
        "jobName",
        "attempts",
        "startTime",
        "completionTime",
        "message",
    }
    assert len(doc["message"]) == 1000
    assert stage_records({"stages": [doc]})["dbt-silver"].but(message="x" * 5000) == rec


def test_build_status_phase_condition_and_columns() -> None:
    recs = [StageRecord("a", "Succeeded", attempts=1), StageRecord("b", "Running", attempts=1)]
    run = RunStatus("Running", "Running", "1/2", 3, dt.date(2025, 1, 1), start=T)
    doc = build_status({}, run, recs, T + dt.timedelta(seconds=90))
    assert doc["currentStage"] == "b" and doc["duration"] == "1m30s"
    assert doc["observedGeneration"] == 3 and doc["logicalDate"] == "2025-01-01"
    assert doc["conditions"][0]["status"] == "Unknown"
    end = RunStatus(
        "Cancelled",
        "Cancelled",
        "cancelled",
        3,
        dt.date(2025, 1, 1),
        start=T,
        end=T + dt.timedelta(seconds=100),
    )
    final = build_status(doc, end, recs, T + dt.timedelta(seconds=500))
    assert final["conditions"][0]["status"] == "False" and final["duration"] == "1m40s"
    assert final["currentStage"] == ""
    assert status_changed(doc, final)
    assert not status_changed(final, {**final, "duration": "9m"})


def test_current_stage_prefers_running_then_retrying_then_failed() -> None:
    assert current_stage([StageRecord("a", "Retrying"), StageRecord("b", "Running")]) == "b"
    assert current_stage([StageRecord("a", "Retrying"), StageRecord("b", "Failed")]) == "a"
    assert current_stage([StageRecord("a", "Succeeded")]) == ""
