"""The PipelineRun status document. Pure.

Shape (declared in the CRD's structural schema, so nothing else survives pruning)::

    phase: Pending | Running | Succeeded | Failed | Cancelled
    observedGeneration, logicalDate, startTime, completionTime, duration ("4m05s")
    currentStage: what runs now (printer column "Stage")
    outcome: Succeeded | StageFailed | TimedOut | Cancelled (decided before finally stages run)
    failedStage, message
    stages: [{name, phase, jobName, attempts, startTime, completionTime, message}]
    triggered: [{pipeline, name, createdAt}]
    conditions: [{type: Succeeded, status: Unknown|True|False, reason, message,
                  lastTransitionTime, observedGeneration}]

The ``Succeeded`` condition is Unknown while the run is pending or running and True/False at
the end, so ``kubectl wait --for=condition=Succeeded`` and Argo CD health checks work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from smepulse_operator.model import format_time, parse_time

StagePhase = Literal[
    "Pending", "Running", "Retrying", "Succeeded", "Failed", "Skipped", "Cancelled"
]
STAGE_DONE: frozenset[str] = frozenset({"Succeeded", "Failed", "Skipped", "Cancelled"})
ConditionStatus = Literal["Unknown", "True", "False"]


@dataclass(frozen=True)
class StageRecord:
    """One line of ``status.stages``: compact, never a whole Job."""

    name: str
    phase: StagePhase = "Pending"
    job_name: str | None = None
    attempts: int = 0
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    message: str = ""

    def but(self, **changes: Any) -> StageRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "phase": self.phase, "attempts": self.attempts}
        if self.job_name:
            doc["jobName"] = self.job_name
        if self.start:
            doc["startTime"] = format_time(self.start)
        if self.end:
            doc["completionTime"] = format_time(self.end)
        if self.message:
            doc["message"] = self.message[:1000]
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StageRecord:
        phase = doc.get("phase", "Pending")
        return cls(
            name=str(doc.get("name", "")),
            phase=phase if phase in _STAGE_PHASES else "Pending",
            job_name=doc.get("jobName"),
            attempts=int(doc.get("attempts") or 0),
            start=parse_time(doc.get("startTime")),
            end=parse_time(doc.get("completionTime")),
            message=str(doc.get("message") or ""),
        )


_STAGE_PHASES = {"Pending", "Running", "Retrying", "Succeeded", "Failed", "Skipped", "Cancelled"}


def stage_records(status: Mapping[str, Any]) -> dict[str, StageRecord]:
    """Previous ``status.stages`` by name (empty for a new run)."""
    return {
        rec.name: rec
        for rec in (StageRecord.from_dict(d) for d in status.get("stages") or [])
        if rec.name
    }


def format_duration(seconds: float) -> str:
    """Compact like kubectl's ages: 45s, 4m05s, 2h03m, 3d04h."""
    total = max(0, int(seconds))
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def succeeded_condition(
    previous: Iterable[Mapping[str, Any]],
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``Succeeded`` condition; lastTransitionTime moves only when ``status`` changes."""
    old = next((c for c in previous if c.get("type") == "Succeeded"), None)
    since = now
    if old is not None and old.get("status") == status:
        since = parse_time(old.get("lastTransitionTime")) or now
    return {
        "type": "Succeeded",
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": format_time(since),
        "observedGeneration": generation,
    }


def current_stage(records: Iterable[StageRecord]) -> str:
    """Printer column "Stage": running stages, else those waiting to retry, else the failed one."""
    recs = list(records)
    for phases in (("Running",), ("Retrying",), ("Failed",)):
        names = [r.name for r in recs if r.phase in phases]
        if names:
            return ",".join(names)
    return ""


@dataclass(frozen=True)
class RunStatus:
    """Everything :func:`build_status` needs besides the stage records."""

    phase: str
    reason: str
    message: str
    generation: int
    logical_date: dt.date
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    outcome: str | None = None
    failed_stage: str | None = None
    triggered: tuple[Mapping[str, Any], ...] = ()


def build_status(
    previous: Mapping[str, Any],
    run: RunStatus,
    records: Iterable[StageRecord],
    now: dt.datetime,
) -> dict[str, Any]:
    """The whole status document to write with a merge patch (lists replace wholesale)."""
    recs = list(records)
    cond_status: ConditionStatus = "Unknown"
    if run.phase == "Succeeded":
        cond_status = "True"
    elif run.phase in ("Failed", "Cancelled"):
        cond_status = "False"
    doc: dict[str, Any] = {
        "phase": run.phase,
        "observedGeneration": run.generation,
        "logicalDate": run.logical_date.isoformat(),
        "currentStage": current_stage(recs) if run.phase == "Running" else "",
        "message": run.message[:1000],
        "stages": [r.to_dict() for r in recs],
        "triggered": [dict(t) for t in run.triggered],
        "conditions": [
            succeeded_condition(
                previous.get("conditions") or [],
                cond_status,
                run.reason,
                run.message,
                run.generation,
                now,
            )
        ],
        # Explicit nulls remove fields a merge patch would otherwise keep.
        "startTime": format_time(run.start) if run.start else None,
        "completionTime": format_time(run.end) if run.end else None,
        "duration": format_duration(((run.end or now) - run.start).total_seconds())
        if run.start
        else None,
        "outcome": run.outcome,
        "failedStage": run.failed_stage,
    }
    return doc


def status_changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` changes anything but the running duration (saves API writes)."""
    ignore = {"duration"}
    for key, value in new.items():
        if key in ignore:
            continue
        if previous.get(key) != value and not (value is None and key not in previous):
            return True
    return False
