"""One run of one pipeline while it executes: the loop that polls stage processes, starts
what the plan says is ready, retries, times out, cancels, and records every change.

Planning is pure (``runner.plan``); processes are ``runner.execute``; the record is
``runner.history``; what people see is ``runner.view``. The public entry points are in
``runner``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping

from rich.console import Console

from smepulse.catalog import Pipeline
from smepulse.runner import history as runs_store
from smepulse.runner import plan
from smepulse.runner.env import stage_env
from smepulse.runner.execute import (
    Attempt,
    StageCommand,
    failure_message,
    kill_group,
    log_name,
    skip_reason,
    start_attempt,
)
from smepulse.runner.history import RunRecord, StageRecord
from smepulse.runner.plan import StageState
from smepulse.runner.view import RunView
from smepulse.settings import Settings

POLL_SECONDS = 0.1


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunExecution:
    """The mutable state of one run while it executes; :meth:`execute` runs it to the end."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        record: RunRecord,
        selected: list[str],
        command: StageCommand,
        console: Console,
        follow_triggers: bool,
        base_env: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.record = record
        self.command = command
        self.follow_triggers = follow_triggers
        self.base_env = base_env
        self.states = plan.initial_states(pipeline, selected)
        self.running: dict[str, Attempt] = {}
        self.retry_at: dict[str, float] = {}
        self.failure_order: list[str] = []
        self.run_dir = settings.runs_dir / record.run_id
        self.view = RunView(console, record)
        finally_names = {s.name for s in pipeline.finally_}
        record.stages = [
            StageRecord(
                name=s.name, state=self.states[s.name].value, is_finally=s.name in finally_names
            )
            for s in pipeline.all_stages
        ]

    # -- bookkeeping ------------------------------------------------------------------------
    def _set(self, name: str, state: StageState, message: str | None = None) -> None:
        self.states[name] = state
        st = self.record.stage(name)
        st.state = state.value
        if message is not None:
            st.message = message
        if state in plan.FINAL and st.started_at is not None:
            st.finished_at = now_utc()
            st.duration_seconds = round((st.finished_at - st.started_at).total_seconds(), 3)
        if state in (StageState.FAILED, StageState.TIMED_OUT) and name not in self.failure_order:
            self.failure_order.append(name)
        runs_store.save(self.settings.runs_dir, self.record)
        self.view.changed(name, state.value, st.attempts, message)

    # -- starting stages --------------------------------------------------------------------
    def _start(self, name: str) -> None:
        stage = self.pipeline.stage(name)
        st = self.record.stage(name)
        st.attempts += 1
        if st.started_at is None:
            st.started_at = now_utc()
        extra: dict[str, str | None] = {}
        if name in {s.name for s in self.pipeline.finally_}:
            outcome, failed = plan.outcome(
                self.pipeline, self.states, self.failure_order, include_finally=False
            )
            extra = {
                "outcome": outcome,
                "failed_stage": failed,
                "failure_message": self.record.stage(failed).message if failed else None,
            }
        env = stage_env(
            self.base_env,
            logical_date=self.record.logical_date,
            run_id=self.record.run_id,
            pipeline=self.pipeline.name,
            params=self.record.params,
            **extra,
        )
        path = self.run_dir / log_name(name, st.attempts)
        st.logs.append(str(path))
        try:
            attempt = start_attempt(
                name,
                st.attempts,
                self.command(name, self.record.logical_date),
                env,
                path,
                stage.timeout_seconds,
            )
        except OSError as exc:
            self._set(name, StageState.FAILED, f"could not start: {exc}")
            return
        self.running[name] = attempt
        self._set(name, StageState.RUNNING, "")

    def _resolve_trigger(self, name: str) -> None:
        target = self.pipeline.stage(name).triggers or ""
        if not self.follow_triggers:
            self._set(name, StageState.SKIPPED, f"{target} not started (triggers disabled)")
            return
        self.record.triggered.append(target)
        self._set(name, StageState.SUCCEEDED, f"{target} will run after this run")

    # -- finishing attempts -----------------------------------------------------------------
    def _finish(self, name: str, attempt: Attempt, code: int) -> None:
        attempt.close()
        del self.running[name]
        st = self.record.stage(name)
        st.exit_code = code
        if code == 0 and not attempt.timed_out:
            reason = skip_reason(attempt.log_path)
            self._set(name, StageState.SKIPPED if reason else StageState.SUCCEEDED, reason or "")
            return
        stage = self.pipeline.stage(name)
        if attempt.timed_out:
            message = f"timed out after {stage.timeout_seconds}s (attempt {attempt.number})"
        else:
            message = failure_message(attempt.log_path) or f"exit code {code}"
        if attempt.number <= stage.retries.limit:
            delay = stage.retries.delay(attempt.number + 1)
            self.retry_at[name] = time.monotonic() + delay
            self._set(name, StageState.RETRYING, f"{message}; retry in {delay}s")
            return
        self._set(name, StageState.TIMED_OUT if attempt.timed_out else StageState.FAILED, message)

    def _poll(self) -> None:
        now = time.monotonic()
        for name, attempt in list(self.running.items()):
            if attempt.poll() is None and attempt.expired(now):
                attempt.timed_out = True
                kill_group(attempt.proc)
            code = attempt.poll()
            if code is not None:
                self._finish(name, attempt, code)

    def _schedule(self) -> None:
        now = time.monotonic()
        slots = self.settings.runner_max_parallel - len(self.running)
        for name in [n for n, t in sorted(self.retry_at.items(), key=lambda kv: kv[1]) if t <= now]:
            if slots <= 0:
                break
            del self.retry_at[name]
            self._start(name)
            slots -= 1
        # Blocking first: next_stages() would block them too, but silently (no record/view).
        for name in plan.block_dependants(self.pipeline, self.states):
            self._set(name, StageState.UPSTREAM_FAILED, "not run: a stage it needs failed")
        for name in plan.ready_main(self.pipeline, self.states):
            if self.pipeline.stage(name).kind == "trigger":
                self._resolve_trigger(name)
        for name in plan.next_stages(self.pipeline, self.states, slots):
            self._start(name)

    def _cancel(self) -> None:
        """Ctrl-C: stop what runs, cancel what waits; finally stages still run."""
        for name, attempt in list(self.running.items()):
            kill_group(attempt.proc, grace=2.0)
            attempt.close()
            del self.running[name]
            self._set(name, StageState.CANCELLED, "cancelled (interrupted)")
        self.retry_at.clear()
        for stage in self.pipeline.stages:
            if self.states[stage.name] in (StageState.PENDING, StageState.RETRYING):
                self._set(stage.name, StageState.CANCELLED, "cancelled (interrupted)")

    def execute(self) -> None:
        """Run until every stage is final; a first Ctrl-C cancels, a second one aborts."""
        runs_store.save(self.settings.runs_dir, self.record)
        interrupted = False
        with self.view:
            while not plan.is_finished(self.pipeline, self.states):
                try:
                    self._poll()
                    self._schedule()
                    self.view.tick()
                    time.sleep(POLL_SECONDS)
                except KeyboardInterrupt:
                    if interrupted:
                        for attempt in self.running.values():
                            kill_group(attempt.proc, grace=0.5)
                        raise
                    interrupted = True
                    self._cancel()
        status, failed = plan.outcome(self.pipeline, self.states, self.failure_order)
        self.record.status = status
        self.record.failed_stage = failed
        self.record.failure_message = self.record.stage(failed).message if failed else None
        self.record.finished_at = now_utc()
        self.record.duration_seconds = round(
            (self.record.finished_at - self.record.started_at).total_seconds(), 3
        )
        runs_store.save(self.settings.runs_dir, self.record)
