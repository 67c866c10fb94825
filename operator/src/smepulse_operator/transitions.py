"""One stage's state from the Jobs that exist, and the Events its changes deserve. Pure.

The Jobs (listed from the API on every reconcile) are the source of truth; the previous
status only fills in what Jobs cannot tell: that a stage already succeeded or was cancelled
after its Job was deleted, and when a vanished attempt was noticed (so a retry backoff does not
restart on every reconcile).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smepulse import planner
from smepulse.catalog import RetryPolicy, Stage
from smepulse_operator.model import JobView, Note
from smepulse_operator.status import StageRecord

__all__ = ["attempt_failed", "observe", "stage_events"]


def observe(
    stage: Stage,
    policy: RetryPolicy,
    jobs: Sequence[JobView],
    prev: StageRecord | None,
    triggered: Iterable[Mapping[str, Any]],
    now: dt.datetime,
) -> tuple[StageRecord, dt.datetime | None]:
    """(record, when the next attempt may start if the stage is Retrying)."""
    prev = prev or StageRecord(stage.name)
    if stage.kind == "trigger":
        return _observe_trigger(stage, prev, triggered), None
    attempts = max([j.attempt for j in jobs] + [prev.attempts])
    if attempts == 0:
        return StageRecord(stage.name), None
    starts = [j.started for j in jobs if j.started] + ([prev.start] if prev.start else [])
    base = prev.but(attempts=attempts, start=min(starts) if starts else None)
    done = next((j for j in jobs if j.state == "succeeded"), None)
    if done is not None:
        return base.but(
            phase="Succeeded", job_name=done.name, end=done.finished or now, message=""
        ), None
    latest = next((j for j in jobs if j.attempt == attempts), None)
    if latest is None or latest.deleting:
        if prev.attempts == attempts and prev.phase in ("Succeeded", "Failed", "Cancelled"):
            return prev, None
        if prev.attempts == attempts and prev.phase == "Retrying" and prev.end:
            end, message = prev.end, prev.message
        else:
            end, message = now, "its Job was deleted before it finished"
    elif latest.state == "active":
        return base.but(phase="Running", job_name=latest.name, end=None, message=""), None
    else:
        end, message = latest.finished or now, latest.message or "failed"
    failed = base.but(end=end, message=message)
    if latest is not None:
        failed = failed.but(job_name=latest.name)
    state, delay = planner.after_failed_attempt(policy, attempts)
    if delay is not None:
        return failed.but(phase=state.value), end + dt.timedelta(seconds=delay)
    return failed.but(phase=state.value), None


def _observe_trigger(
    stage: Stage, prev: StageRecord, triggered: Iterable[Mapping[str, Any]]
) -> StageRecord:
    if prev.phase == "Succeeded":
        return prev
    if any(t.get("pipeline") == stage.triggers for t in triggered):
        return prev.but(phase="Succeeded", attempts=1)
    return StageRecord(stage.name)


def attempt_failed(rec: StageRecord) -> Note:
    """The Warning for a failed attempt that will be retried (``rec`` is Retrying)."""
    return Note(
        "Warning",
        "StageAttemptFailed",
        f"stage {rec.name} attempt {rec.attempts} failed: {rec.message}; it will be retried",
    )


def stage_events(prev: Mapping[str, StageRecord], records: Iterable[StageRecord]) -> list[Note]:
    """Events for stage changes since the previous status (start, retry, success, failure)."""
    notes: list[Note] = []
    for rec in records:
        old = prev.get(rec.name) or StageRecord(rec.name)
        same = old.phase == rec.phase and old.attempts == rec.attempts
        if same:
            continue
        job = f" (Job {rec.job_name})" if rec.job_name else ""
        if rec.phase == "Running":
            if rec.attempts <= 1:
                notes.append(Note("Normal", "StageStarted", f"stage {rec.name} started{job}"))
            else:
                notes.append(
                    Note(
                        "Normal",
                        "StageRetrying",
                        f"stage {rec.name} attempt {rec.attempts} started{job}",
                    )
                )
        elif rec.phase == "Retrying":
            notes.append(attempt_failed(rec))
        elif rec.phase == "Succeeded":
            notes.append(
                Note(
                    "Normal",
                    "StageSucceeded",
                    f"stage {rec.name} succeeded{job}"
                    + (f": {rec.message}" if rec.message else ""),
                )
            )
        elif rec.phase == "Failed":
            notes.append(
                Note(
                    "Warning",
                    "StageFailed",
                    f"stage {rec.name} failed after {rec.attempts} attempt(s): {rec.message}",
                )
            )
        elif rec.phase == "Cancelled":
            notes.append(Note("Warning", "StageCancelled", f"stage {rec.name}: {rec.message}"))
    return notes
