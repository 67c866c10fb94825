"""What to do next for one PipelineRun. Pure: no API calls, no clock (``now`` is an input).

Level-triggered: every reconcile passes the run's spec, its previous status, the stage Jobs
that exist (listed from the API, the source of truth) and the other runs of the same pipeline;
:func:`plan_run` returns the Jobs to create or delete, the child runs to trigger, the runs to
cancel (concurrencyPolicy Replace), the Events to post and the complete new status. Replaying
a plan is harmless: Job and child-run names are deterministic and "already exists" is success,
so a reconcile that dies half-way is simply done again.

Lifecycle: Pending (concurrency gate, suspend) -> Running (main stages in DAG order, retries
with backoff) -> an *outcome* is decided (Succeeded, StageFailed, TimedOut, Cancelled) ->
``finally`` stages run with that outcome in their environment -> a terminal phase.

Which stages start, retry, are skipped or cancelled, and when the main stages have settled,
is decided by the planner shared with the local runner (:mod:`smepulse.planner`, which also
documents the failure semantics): a failed branch never stops an independent branch, not even
one waiting to retry. This module adds what only the operator has: Jobs as the source of
truth, the concurrency gate, the run timeout, the status document, Events and TTL.
"""

from __future__ import annotations

__all__ = [
    "OUTCOMES",
    "ChildRun",
    "FinallyContext",
    "JobRequest",
    "Peer",
    "Plan",
    "RunInput",
    "logical_date",
    "plan_run",
    "selected_stages",
]

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

from smepulse import planner
from smepulse.catalog import Pipeline, RetryPolicy, Stage
from smepulse.planner import StageState, StageView
from smepulse_operator import transitions
from smepulse_operator.actions import (
    ChildRun,
    FinallyContext,
    JobRequest,
    Peer,
    Plan,
    RunInput,
)
from smepulse_operator.model import (
    TERMINAL_PHASES,
    InvalidSpec,
    JobView,
    Note,
    RunSpec,
    child_run_name,
    format_time,
    job_name,
    parse_time,
)
from smepulse_operator.status import RunStatus, StageRecord, build_status, stage_records

# The outcome decided before finally stages run -> (phase, SMEPULSE_RUN_OUTCOME).
OUTCOMES: dict[str, tuple[str, str]] = {
    "Succeeded": ("Succeeded", "Succeeded"),
    "StageFailed": ("Failed", "Failed"),
    "TimedOut": ("Failed", "TimedOut"),
    "Cancelled": ("Cancelled", "Cancelled"),
}


def logical_date(run: RunInput) -> dt.date:
    """spec.logicalDate, else the creation date in the business time zone."""
    if run.spec.logical_date:
        return run.spec.logical_date
    return run.ref.created.astimezone(ZoneInfo(run.timezone)).date()


def selected_stages(pipeline: Pipeline, spec: RunSpec) -> list[Stage]:
    """Main stages this run executes, in DAG order; InvalidSpec for unknown names."""
    try:
        names = pipeline.select(list(spec.stages) if spec.stages else None, spec.from_stage)
    except KeyError as exc:
        raise InvalidSpec(str(exc.args[0])) from None
    return [pipeline.stage(n) for n in names]


def plan_run(pipeline: Pipeline, run: RunInput, now: dt.datetime) -> Plan:
    """The next step for ``run``; see the module docstring. Raises InvalidSpec."""
    if run.status.get("phase") in TERMINAL_PHASES:
        return _plan_finished(run, now)
    return _Planner(pipeline, run, now).plan()


def _plan_finished(run: RunInput, now: dt.datetime) -> Plan:
    plan = Plan()
    ttl = run.spec.ttl_seconds_after_finished
    ended = parse_time(run.status.get("completionTime"))
    if ttl is not None and ended is not None:
        expires = ended + dt.timedelta(seconds=ttl)
        if now >= expires:
            plan.delete_run = True
        else:
            plan.wake_in((expires - now).total_seconds())
    return plan


class _Planner:
    def __init__(self, pipeline: Pipeline, run: RunInput, now: dt.datetime) -> None:
        self.pipeline, self.run, self.spec, self.now = pipeline, run, run.spec, now
        self.prev = stage_records(run.status)
        self.out = Plan()
        self.records: dict[str, StageRecord] = {}
        self.triggered: list[Mapping[str, Any]] = list(run.status.get("triggered") or [])
        self.jobs_by_stage: dict[str, list[JobView]] = {}
        for job in run.jobs:
            self.jobs_by_stage.setdefault(job.stage, []).append(job)
        self.selected = selected_stages(pipeline, self.spec)
        self.date = logical_date(run)

    # -- the phases ---------------------------------------------------------------------
    def plan(self) -> Plan:
        start = parse_time(self.run.status.get("startTime"))
        if start is None:
            gate = self._gate()
            if gate is not None:
                return gate
            start = self.now
            self.note("Normal", "RunStarted", f"{self.pipeline.name} for {self.date} started")
        outcome: str | None = self.run.status.get("outcome")
        failed_stage: str | None = self.run.status.get("failedStage")
        message = str(self.run.status.get("message") or "")
        if outcome is None:
            outcome, failed_stage, message = self._main(start)
        else:
            for st in self.selected:
                self.records[st.name] = self.prev.get(st.name) or StageRecord(st.name, "Skipped")
        if outcome is None:
            return self._finish_plan(
                "Running",
                "Suspended" if self.spec.suspend else "Running",
                message,
                start,
                None,
                None,
                None,
            )
        return self._finally(start, outcome, failed_stage, message)

    def _gate(self) -> Plan | None:
        """Before the start: cancel, suspend and concurrencyPolicy. None = start now."""
        if self.spec.cancel and not self.run.jobs:
            return self._terminal("Cancelled", "Cancelled", "cancelled before it started", None)
        if self.spec.cancel:
            # Jobs exist although no start was recorded: an earlier reconcile created them and
            # died before its status patch landed. Treat the run as started, so the cancel
            # deletes those Jobs and the finally stages still run.
            return None
        if self.spec.suspend:
            return self._pending("Suspended", "suspended: set spec.suspend to false to start")
        key = (self.run.ref.created, self.run.ref.name)
        older = sorted(
            (
                p
                for p in self.run.peers
                if (p.created, p.name) < key and p.phase not in TERMINAL_PHASES
            ),
            key=lambda p: (p.created, p.name),
        )
        if not older or self.spec.concurrency_policy == "Allow":
            return self._upstream_gate()
        names = ", ".join(p.name for p in older)
        policy = self.spec.concurrency_policy
        if policy == "Forbid":
            return self._terminal(
                "Failed",
                "ConcurrencyForbidden",
                f"not started: {names} (same pipeline) is still active and concurrencyPolicy is Forbid",
                None,
            )
        if policy == "Replace":
            self.out.cancel_runs = [p.name for p in older if not p.cancel]
            return self._pending(
                "Replacing", f"waiting for {names} to stop (concurrencyPolicy Replace)"
            )
        return self._pending("Queued", f"queued behind {names} (concurrencyPolicy Queue)")

    def _upstream_gate(self) -> Plan | None:
        """A fromStage run publishes on top of its upstream: refuse when that is not this
        date's (checked when the run would start, after any run it queued behind)."""
        if not self.spec.from_stage:
            return None
        why = planner.unpublished_upstream(
            self.pipeline, self.spec.from_stage, self.date, self.run.last_success
        )
        if why is None:
            return None
        return self._terminal("Failed", "UpstreamNotPublished", why, None)

    def _main(self, start: dt.datetime) -> tuple[str | None, str | None, str]:
        """Advance the main stages; returns (outcome or None, failed stage, message).

        The decisions (what starts, retries, is skipped, when the stages have settled) are the
        shared planner's (:func:`smepulse.planner.plan_step`); this method observes the Jobs,
        applies them and handles the run's own timeout.
        """
        retry_at: dict[str, dt.datetime | None] = {}
        for st in self.selected:
            self.records[st.name], retry_at[st.name] = self._observe(st, self._policy(st))
        timeout = self.spec.timeout_seconds
        timed_out = False
        if timeout is not None and not self.spec.cancel:
            deadline = start + dt.timedelta(seconds=timeout)
            timed_out = self.now >= deadline
            if not timed_out:
                self.out.wake_in((deadline - self.now).total_seconds())
        step = planner.plan_step(
            self.pipeline,
            [st.name for st in self.selected],
            self._views(self.selected, retry_at),
            hold=self.spec.suspend,
            cancel=self.spec.cancel or timed_out,
        )
        why = (
            "cancelled (spec.cancel)"
            if self.spec.cancel
            else f"run timed out (timeoutSeconds={timeout})"
        )
        for name in step.cancel:
            rec = self.records[name]
            if rec.phase == "Running" and rec.job_name:
                self.out.delete_jobs.append(rec.job_name)
                rec = rec.but(end=self.now)
            self.records[name] = rec.but(phase="Cancelled", message=why)
        for name in step.skip:
            reason = why if (self.spec.cancel or timed_out) else "a stage it needs did not succeed"
            self.records[name] = self.records[name].but(
                phase="Skipped", message=f"not run: {reason}"
            )
        main = {st.name for st in self.selected}
        for name in step.start:
            if name in main:
                self._start_main(self.pipeline.stage(name))
        for st in self.selected:
            when = retry_at[st.name]
            if self.records[st.name].phase == "Retrying" and when is not None:
                self.out.wake_in((when - self.now).total_seconds())
        if not step.settled:
            return None, None, self._progress([self.records[st.name] for st in self.selected])
        if self.spec.cancel:
            return "Cancelled", None, "cancelled by spec.cancel"
        if timed_out:
            return "TimedOut", None, f"the run exceeded timeoutSeconds={timeout}"
        if step.outcome == "Failed" and step.failed_stage is not None:
            rec = self.records[step.failed_stage]
            message = f"stage {rec.name} failed after {rec.attempts} attempt(s): {rec.message}"
            return "StageFailed", rec.name, message
        if step.outcome == "Succeeded":
            return "Succeeded", None, f"{len(self.selected)} stage(s) succeeded"
        return "StageFailed", None, "the run's stages did not all succeed"

    def _views(
        self, stages: Sequence[Stage], retry_at: Mapping[str, dt.datetime | None]
    ) -> dict[str, StageView]:
        """What the planner reads: each stage's phase and whether its retry backoff is over."""
        views = {}
        for st in stages:
            when = retry_at.get(st.name)
            views[st.name] = StageView(
                StageState(self.records[st.name].phase),
                retry_due=when is not None and self.now >= when,
            )
        return views

    def _start_main(self, st: Stage) -> None:
        rec = self.records[st.name]
        if st.kind == "trigger" and st.triggers:
            child = ChildRun(
                st.triggers,
                child_run_name(self.run.ref.name, self.pipeline.name, st.triggers, self.date),
                self.date,
                st.name,
            )
            self.out.trigger_runs.append(child)
            self.triggered.append(
                {"pipeline": child.pipeline, "name": child.name, "createdAt": format_time(self.now)}
            )
            self.records[st.name] = rec.but(
                phase="Succeeded",
                attempts=1,
                start=self.now,
                end=self.now,
                message=f"triggered {child.name}",
            )
        else:
            self._create(st, rec.attempts + 1, None)

    def _finally(
        self, start: dt.datetime, outcome: str, failed_stage: str | None, message: str
    ) -> Plan:
        phase, env_outcome = OUTCOMES[outcome]
        ctx = FinallyContext(env_outcome, failed_stage, message)
        hold = self.spec.suspend and not self.spec.cancel
        retry_at: dict[str, dt.datetime | None] = {}
        for st in self.pipeline.finally_:
            self.records[st.name], retry_at[st.name] = self._observe(st, st.retries)
        step = planner.plan_step(
            self.pipeline,
            [st.name for st in self.selected],
            self._views((*self.selected, *self.pipeline.finally_), retry_at),
            hold=hold,
        )
        finally_names = {st.name for st in self.pipeline.finally_}
        for name in step.start:
            if name in finally_names:
                self._create(self.pipeline.stage(name), self.records[name].attempts + 1, ctx)
        for st in self.pipeline.finally_:
            when = retry_at[st.name]
            if self.records[st.name].phase == "Retrying" and when is not None and not hold:
                self.out.wake_in((when - self.now).total_seconds())
        fin = [self.records[st.name] for st in self.pipeline.finally_]
        if any(r.phase not in ("Succeeded", "Failed") for r in fin):
            return self._finish_plan(
                "Running",
                "Suspended" if hold else "Running",
                message,  # the outcome's message: a finally stage is told the same
                start,
                None,
                outcome,
                failed_stage,
            )
        reason = outcome
        broken = next((r for r in fin if r.phase == "Failed"), None)
        if outcome == "Succeeded" and broken is not None:
            phase, reason, failed_stage = "Failed", "StageFailed", broken.name
            message = f"finally stage {broken.name} failed: {broken.message}"
        return self._terminal(phase, reason, message, start, outcome, failed_stage)

    # -- building blocks ------------------------------------------------------------------
    def _policy(self, st: Stage) -> RetryPolicy:
        if self.spec.retries is None:
            return st.retries
        return RetryPolicy(
            limit=self.spec.retries.limit, backoff_seconds=self.spec.retries.backoff_seconds
        )

    def _observe(self, st: Stage, policy: RetryPolicy) -> tuple[StageRecord, dt.datetime | None]:
        return transitions.observe(
            st,
            policy,
            self.jobs_by_stage.get(st.name, []),
            self.prev.get(st.name),
            self.triggered,
            self.now,
        )

    def _create(self, st: Stage, attempt: int, ctx: FinallyContext | None) -> None:
        self.out.create_jobs.append(JobRequest(st, attempt, ctx))
        rec = self.records.get(st.name) or StageRecord(st.name)
        old = self.prev.get(st.name)
        if rec.phase == "Retrying" and not (
            old is not None and old.phase == "Retrying" and old.attempts == rec.attempts
        ):
            # Retried at once (no backoff): the failed attempt never showed as Retrying, so
            # the Event that says why it failed (OOMKilled, ...) is posted here.
            self.out.events.append(transitions.attempt_failed(rec))
        self.records[st.name] = rec.but(
            phase="Running",
            attempts=attempt,
            job_name=job_name(self.run.ref.name, st.name, attempt),
            start=rec.start or self.now,
            end=None,
            message="",
        )

    def _progress(self, recs: list[StageRecord]) -> str:
        done = sum(r.phase == "Succeeded" for r in recs)
        return f"{done}/{len(recs)} stage(s) succeeded"

    def note(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.out.events.append(Note(type_, reason, message))

    def _pending(self, reason: str, message: str) -> Plan:
        prev_reason = next(
            (
                c.get("reason")
                for c in self.run.status.get("conditions") or []
                if c.get("type") == "Succeeded"
            ),
            None,
        )
        if prev_reason != reason:
            self.note("Normal", f"Run{reason}", message)
        for st in self.selected:
            self.records[st.name] = StageRecord(st.name)
        return self._finish_plan("Pending", reason, message, None, None, None, None)

    def _terminal(
        self,
        phase: str,
        reason: str,
        message: str,
        start: dt.datetime | None,
        outcome: str | None = None,
        failed_stage: str | None = None,
    ) -> Plan:
        self.out.finished = True
        if self.spec.ttl_seconds_after_finished is not None:
            self.out.wake_in(self.spec.ttl_seconds_after_finished)  # then delete the run
        kind: Literal["Normal", "Warning"] = "Normal" if phase == "Succeeded" else "Warning"
        self.note(
            kind,
            f"Run{reason}" if not reason.startswith("Run") else reason,
            f"{self.pipeline.name} for {self.date}: {phase}: {message}",
        )
        return self._finish_plan(phase, reason, message, start, self.now, outcome, failed_stage)

    def _finish_plan(
        self,
        phase: str,
        reason: str,
        message: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        outcome: str | None,
        failed_stage: str | None,
    ) -> Plan:
        order = [st.name for st in (*self.selected, *self.pipeline.finally_)]
        recs = [self.records[n] for n in order if n in self.records]
        # Order: RunStarted and failed attempts retried at once, then what happened to stages
        # (the retry's StageRetrying), then the run's own news.
        first = ("RunStarted", "StageAttemptFailed")
        started = [e for e in self.out.events if e.reason in first]
        others = [e for e in self.out.events if e.reason not in first]
        self.out.events = [*started, *transitions.stage_events(self.prev, recs), *others]
        self.out.status = build_status(
            self.run.status,
            RunStatus(
                phase=phase,
                reason=reason,
                message=message,
                generation=self.run.ref.generation,
                logical_date=self.date,
                start=start,
                end=end,
                outcome=outcome,
                failed_stage=failed_stage,
                triggered=tuple(self.triggered),
            ),
            recs,
            self.now,
        )
        return self.out
