"""One run of one pipeline while it executes: the loop that polls stage processes, asks the
planner what to do, starts, retries, times out, cancels, and records every change.

Planning is the one pure planner of both executors (:mod:`smepulse.planner`); processes are
``runner.execute``; the record is ``runner.history``; what people see is ``runner.view``. The
public entry points are in ``runner``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping

from rich.console import Console

from smepulse import planner
from smepulse.catalog import Pipeline
from smepulse.planner import StageState, StageView
from smepulse.runner import history as runs_store
from smepulse.runner.dbt_worker import DbtWorker, start_in_worker
from smepulse.runner.env import stage_env
from smepulse.runner.execute import (
    Attempt,
    StageCommand,
    failure_message,
    log_name,
    skip_reason,
    start_attempt,
)
from smepulse.runner.history import RunRecord, StageRecord
from smepulse.runner.view import RunView
from smepulse.settings import Settings

POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 5.0


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunExecution:
    """The mutable state of one run while it executes; :meth:`execute` runs it to the end.

    ``keep`` holds stage records of an interrupted run that already succeeded (``--resume``):
    they stay in the record as they were and count as done for the stages that need them.
    """

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
        keep: Mapping[str, StageRecord] | None = None,
        dbt_worker: bool = False,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.record = record
        self.command = command
        self.follow_triggers = follow_triggers
        self.base_env = base_env
        self.selected = list(selected)
        self.finally_names = {s.name for s in pipeline.finally_}
        self.states: dict[str, StageState] = {
            n: StageState.PENDING for n in [*self.selected, *self.finally_names]
        }
        self.running: dict[str, Attempt] = {}
        self.retry_at: dict[str, float] = {}
        self.failure_order: list[str] = []
        self.timed_out: set[str] = set()
        self.cancelled = False
        self.last_beat = 0.0
        self.run_dir = settings.runs_dir / record.run_id
        self.view = RunView(console, record)
        # The warm dbt worker (runner.dbt_worker): used for dbt stages when enabled.
        self.use_dbt_worker = dbt_worker and any(
            pipeline.stage(n).dbt is not None for n in self.selected
        )
        self.worker: DbtWorker | None = None
        keep = keep or {}
        record.stages = [
            keep[s.name]
            if s.name in keep
            else StageRecord(
                name=s.name,
                state=StageState.PENDING.value,
                is_finally=s.name in self.finally_names,
            )
            for s in pipeline.all_stages
            if s.name in self.states or s.name in keep
        ]
        record.runner_pid = os.getpid()
        record.runner_host = socket.gethostname()

    # -- bookkeeping ------------------------------------------------------------------------
    def _set(self, name: str, state: StageState, message: str | None = None) -> None:
        self.states[name] = state
        st = self.record.stage(name)
        st.state = state.value
        if message is not None:
            st.message = message
        if state in planner.FINAL and st.started_at is not None:
            st.finished_at = now_utc()
            st.duration_seconds = round((st.finished_at - st.started_at).total_seconds(), 3)
        if state is StageState.FAILED and name not in self.failure_order:
            self.failure_order.append(name)
        self._save()
        self.view.changed(name, state.value, st.attempts, message)

    def _save(self) -> None:
        self.record.heartbeat_at = now_utc()
        self.last_beat = time.monotonic()
        runs_store.save(self.settings.runs_dir, self.record)

    def _outcome(self, *, include_finally: bool) -> tuple[str, str | None]:
        outcome, failed = planner.outcome(
            self.pipeline,
            self.selected,
            self.states,
            self.failure_order,
            include_finally=include_finally,
        )
        if self.cancelled:
            return "Cancelled", failed
        if outcome == "Failed" and failed in self.timed_out:
            return "TimedOut", failed
        return outcome, failed

    # -- starting stages --------------------------------------------------------------------
    def _start(self, name: str) -> None:
        stage = self.pipeline.stage(name)
        if stage.kind == "trigger":
            self._resolve_trigger(name)
            return
        st = self.record.stage(name)
        st.attempts += 1
        if st.started_at is None:
            st.started_at = now_utc()
        extra: dict[str, str | None] = {}
        if name in self.finally_names:
            outcome, failed = self._outcome(include_finally=False)
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
        argv = self.command(name, self.record.logical_date)
        attempt: Attempt | None = None
        try:
            worker = self._idle_worker() if stage.dbt is not None else None
            if worker is not None:
                try:
                    attempt = start_in_worker(
                        worker, name, st.attempts, argv, env, path, stage.timeout_seconds
                    )
                except OSError:  # the worker died before taking the stage: run it alone
                    worker.kill(grace=0.0)
            if attempt is None:
                attempt = start_attempt(name, st.attempts, argv, env, path, stage.timeout_seconds)
        except OSError as exc:
            self._set(name, StageState.FAILED, f"could not start: {exc}")
            return
        self.running[name] = attempt
        st.pid = attempt.proc.pid
        self._set(name, StageState.RUNNING, "")

    def _idle_worker(self) -> DbtWorker | None:
        """The run's dbt worker, started (again) if it is not running; None when it is busy
        (the stage then runs as its own process) or the worker is off."""
        if not self.use_dbt_worker:
            return None
        if self.worker is not None and self.worker.alive:
            return None if self.worker.busy else self.worker
        if self.worker is not None:
            self.worker.close(grace=0.0)
        self.worker = DbtWorker(self.base_env, self.run_dir / "dbt-worker.log")
        return self.worker

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def _resolve_trigger(self, name: str) -> None:
        target = self.pipeline.stage(name).triggers or ""
        if not self.follow_triggers:
            self._set(name, StageState.SUCCEEDED, f"{target} not started (triggers disabled)")
            return
        self.record.triggered.append(target)
        self._set(name, StageState.SUCCEEDED, f"{target} will run after this run")

    # -- finishing attempts -----------------------------------------------------------------
    def _finish(self, name: str, attempt: Attempt, code: int) -> None:
        attempt.close()
        del self.running[name]
        st = self.record.stage(name)
        st.exit_code = code
        st.pid = None
        if code == 0 and not attempt.timed_out:
            reason = skip_reason(attempt.log_path)
            self._set(name, StageState.SUCCEEDED, f"skipped: {reason}" if reason else "")
            return
        stage = self.pipeline.stage(name)
        if attempt.timed_out:
            message = f"timed out after {stage.timeout_seconds}s (attempt {attempt.number})"
            self.timed_out.add(name)
        else:
            message = failure_message(attempt.log_path) or f"exit code {code}"
            self.timed_out.discard(name)
        state, delay = planner.after_failed_attempt(stage.retries, attempt.number)
        if state is StageState.RETRYING and delay is not None:
            self.retry_at[name] = time.monotonic() + delay
            self._set(name, state, f"{message}; retry in {delay}s")
            return
        self._set(name, state, message)

    def _poll(self) -> None:
        now = time.monotonic()
        for name, attempt in list(self.running.items()):
            if attempt.poll() is None and attempt.expired(now):
                attempt.timed_out = True
                attempt.kill()
            code = attempt.poll()
            if code is not None:
                self._finish(name, attempt, code)
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self._save()  # the heartbeat `smepulse runs` reads to tell a dead runner

    def _schedule(self) -> planner.Step:
        now = time.monotonic()
        views = {
            n: StageView(s, retry_due=self.retry_at.get(n, now + 1) <= now)
            for n, s in self.states.items()
        }
        step = planner.plan_step(
            self.pipeline,
            self.selected,
            views,
            cancel=self.cancelled,
            slots=self.settings.runner_max_parallel - len(self.running),
            failure_order=self.failure_order,
        )
        for name in step.cancel:
            attempt = self.running.pop(name, None)
            if attempt is not None:
                attempt.kill(grace=2.0)
                attempt.close()
            self.retry_at.pop(name, None)
            self._set(name, StageState.CANCELLED, "cancelled (interrupted)")
        for name in step.skip:
            why = (
                "cancelled before it started"
                if self.cancelled
                else "a stage it needs did not succeed"
            )
            self._set(name, StageState.SKIPPED, f"not run: {why}")
        for name in step.start:
            self.retry_at.pop(name, None)
            self._start(name)
        return step

    def execute(self) -> None:
        """Run until every stage is final; a first Ctrl-C cancels, a second one aborts."""
        self.record.status = "Running"
        self._save()
        if self.use_dbt_worker:
            self._idle_worker()  # warm: imports dbt while the first stages run
        try:
            self._loop()
        finally:
            self._stop_worker()
        status, failed = self._outcome(include_finally=True)
        self.record.status = status
        self.record.failed_stage = failed
        self.record.failure_message = self.record.stage(failed).message if failed else None
        self.record.finished_at = now_utc()
        self.record.duration_seconds = round(
            (self.record.finished_at - self.record.started_at).total_seconds(), 3
        )
        self._save()

    def _loop(self) -> None:
        with self.view, _first_ctrl_c_as_flag() as ctrl_c:
            while True:
                try:
                    if ctrl_c.is_set():
                        self.cancelled = True  # seen by _schedule: cancel, then finally stages
                    self._poll()
                    step = self._schedule()
                    if step.finished and not self.running:
                        break
                    self.view.tick()
                    ctrl_c.wait(POLL_SECONDS)
                except KeyboardInterrupt:  # the second Ctrl-C: abort now
                    for attempt in self.running.values():
                        attempt.kill(grace=0.5)
                    raise


@contextlib.contextmanager
def _first_ctrl_c_as_flag() -> Iterator[threading.Event]:
    """The first SIGINT only sets the returned flag; the second raises KeyboardInterrupt.

    A KeyboardInterrupt raised at an arbitrary point of the loop could land inside a file
    lock's acquire or release, or in a record being written, and leave the run hanging or its
    record torn; the loop looks at the flag between steps instead. Outside the main thread
    (where signal handlers cannot be set) Ctrl-C keeps Python's default.
    """
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
