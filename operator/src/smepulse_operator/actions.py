"""What the planner is given and what it decides: plain, immutable data. Pure.

:class:`RunInput` is everything known about one run at one moment; :class:`Plan` is the
answer of :func:`smepulse_operator.planning.plan_run`, which the reconciler applies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smepulse.catalog import Stage
from smepulse_operator.model import JobView, Note, RunRef, RunSpec


@dataclass(frozen=True)
class Peer:
    """Another run of the same pipeline in the namespace (for concurrencyPolicy)."""

    name: str
    created: dt.datetime
    phase: str
    cancel: bool = False


@dataclass(frozen=True)
class FinallyContext:
    """What a finally stage (notify) is told about the run (SMEPULSE_RUN_OUTCOME etc.)."""

    outcome: str
    failed_stage: str | None
    message: str


@dataclass(frozen=True)
class JobRequest:
    stage: Stage
    attempt: int
    finally_ctx: FinallyContext | None = None


@dataclass(frozen=True)
class ChildRun:
    pipeline: str
    name: str
    logical_date: dt.date
    stage: str


@dataclass
class Plan:
    status: dict[str, Any] | None = None
    create_jobs: list[JobRequest] = field(default_factory=list)
    delete_jobs: list[str] = field(default_factory=list)
    trigger_runs: list[ChildRun] = field(default_factory=list)
    cancel_runs: list[str] = field(default_factory=list)
    events: list[Note] = field(default_factory=list)
    requeue_after: float | None = None
    delete_run: bool = False
    finished: bool = False

    def wake_in(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requeue_after = (
            seconds if self.requeue_after is None else min(self.requeue_after, seconds)
        )


@dataclass(frozen=True)
class RunInput:
    """Everything known about one run at one moment."""

    ref: RunRef
    spec: RunSpec
    status: Mapping[str, Any]
    jobs: Sequence[JobView] = ()
    peers: Sequence[Peer] = ()
    timezone: str = "UTC"
    #: Before a ``fromStage`` run starts: per stage, the logical date of its newest successful
    #: attempt in the namespace (every PipelineRun still kept); see
    #: :func:`smepulse.planner.unpublished_upstream`.
    last_success: Mapping[str, dt.date] = field(default_factory=dict)
