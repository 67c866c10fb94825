"""The local runner: ``smepulse run``, ``smepulse backfill`` and ``smepulse runs``.

A run executes one pipeline of the catalog for one logical date. Each stage is a subprocess
(``python -m smepulse.jobs.cli stage <name> --logical-date D``, the same entrypoint as a
Kubernetes Job), started when the stages it needs are done, at most
``settings.runner_max_parallel`` at a time, with the catalog's retries (exponential backoff)
and timeout (the stage's process group is killed). Planning is pure (``runner_plan``); this
module does the I/O.

Semantics worth knowing:

- A failed stage stops the stages that depend on it; independent branches carry on. Finally
  stages (notify) run after the rest whatever happened, with the outcome in their env.
- Trigger stages (daily-etl's ``trigger-ml-predict``) are asynchronous in the catalog, as in
  the cluster where the operator creates the child PipelineRun and moves on. Locally the
  child pipeline runs for the same logical date *after the parent run has finished* (its
  own run id and record, ``triggered_by`` the parent). So, as in the cluster, the parent's
  report shows the latest forecast available before that day's ml-predict. ``--no-trigger``
  (``follow_triggers=False``) records the trigger stage as skipped and starts nothing.
- ``from_stage`` re-runs that stage and everything downstream; ``only`` runs exactly the
  listed stages. Either way a new run record is made (``<pipeline>-<YYYYMMDD>-<n>``).
- Every run is recorded in ``settings.runs_dir/<run-id>/run.json`` beside its stage logs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from smepulse.jobs import runner_plan as plan
from smepulse.jobs import runs_store
from smepulse.jobs.catalog import Catalog, Pipeline, load_catalog
from smepulse.jobs.errors import ConfigError
from smepulse.jobs.runner_env import settings_env, stage_env
from smepulse.jobs.runner_exec import (
    Attempt,
    StageCommand,
    default_command,
    failure_message,
    kill_group,
    log_name,
    skip_reason,
    start_attempt,
)
from smepulse.jobs.runner_plan import StageState
from smepulse.jobs.runner_view import RunView, history_table, print_summary
from smepulse.jobs.runs_store import RunRecord, StageRecord
from smepulse.jobs.settings import Settings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Run:
    """The mutable state of one run while it executes."""

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
            st.finished_at = _now()
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
            st.started_at = _now()
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
        self.record.finished_at = _now()
        self.record.duration_seconds = round(
            (self.record.finished_at - self.record.started_at).total_seconds(), 3
        )
        runs_store.save(self.settings.runs_dir, self.record)


def _console() -> Console:
    return Console(highlight=False)


def run_pipeline(
    settings: Settings,
    pipeline: str,
    logical_date: dt.date | None = None,
    from_stage: str | None = None,
    only: list[str] | None = None,
    follow_triggers: bool = True,
    *,
    catalog: Catalog | None = None,
    command: StageCommand | None = None,
    console: Console | None = None,
    triggered_by: str | None = None,
) -> bool:
    """Run ``pipeline`` for ``logical_date`` (default: settings' business date); True if it
    and every pipeline it triggered succeeded.

    ``catalog`` and ``command`` exist for tests (a small catalog, fake stage commands).
    Raises :class:`ConfigError` for an unknown pipeline or stage name.
    """
    catalog = catalog or load_catalog()
    try:
        p = catalog.pipeline(pipeline)
        selected = p.select(only=only, from_stage=from_stage)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if not selected:
        raise ConfigError(f"nothing to run in {pipeline}: the selection is empty")
    date = logical_date or settings.business_date
    console = console or _console()
    run_id, run_dir = runs_store.claim_run_dir(settings.runs_dir, pipeline, date)
    record = RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        logical_date=date,
        started_at=_now(),
        from_stage=from_stage,
        only=only,
        params=dict(settings.params),
        triggered_by=triggered_by,
    )
    base_env = settings_env(settings, os.environ)
    run = _Run(
        settings,
        p,
        record,
        selected,
        command or default_command,
        console,
        follow_triggers,
        base_env,
    )
    log.debug("run %s: stages %s", run_id, selected)
    run.execute()
    print_summary(console, record, str(run_dir))
    ok = record.status == "Succeeded"
    children: list[str] = []
    for child in record.triggered:
        console.print(f"{run_id} triggered [bold]{child}[/] for {date}")
        child_ok = run_pipeline(
            settings, child, date, follow_triggers=follow_triggers, catalog=catalog,
            command=command, console=console, triggered_by=run_id,
        )  # fmt: skip
        ok = ok and child_ok
        latest = runs_store.runs_for(settings.runs_dir, child, date)
        children.append(latest[-1].run_id if latest else child)
    if children:
        record.triggered = children
        runs_store.save(settings.runs_dir, record)
    return ok


def backfill(
    settings: Settings,
    pipeline: str,
    start: dt.date,
    end: dt.date,
    *,
    catalog: Catalog | None = None,
    command: StageCommand | None = None,
    console: Console | None = None,
) -> bool:
    """One run per logical date from ``start`` to ``end`` (inclusive), in order.

    Resumable: a date with a complete successful run already recorded is skipped, so running
    the same backfill again after a failure picks up where it stopped. Stops at the first
    date that fails (later dates usually build on earlier ones) and returns False.
    """
    if end < start:
        raise ConfigError(f"backfill: end date {end} is before start date {start}")
    console = console or _console()
    day = start
    while day <= end:
        done = runs_store.succeeded_before(settings.runs_dir, pipeline, day)
        if done is not None:
            console.print(f"{day}: already done by {done.run_id}, skipped")
        elif not run_pipeline(
            settings, pipeline, day, catalog=catalog, command=command, console=console
        ):
            console.print(
                f"[bold red]backfill stopped at {day}[/]: fix the failure and run the same command again to resume"
            )
            return False
        day += dt.timedelta(days=1)
    return True


def print_history(settings: Settings, limit: int, console: Console | None = None) -> None:
    """``smepulse runs``: the newest ``limit`` local runs as a table."""
    console = console or _console()
    records = runs_store.history(settings.runs_dir)[:limit]
    if not records:
        console.print(f"no runs recorded yet in {settings.runs_dir}")
        return
    console.print(history_table(records))
    console.print(
        f"records and stage logs: {Path(settings.runs_dir).resolve()}/<run>/", markup=False
    )
