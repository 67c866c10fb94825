"""The local runner: ``smepulse run``, ``smepulse backfill`` and ``smepulse runs``.

A run executes one pipeline of the catalog for one logical date. Each stage is a subprocess
(``python -m smepulse.cli stage <name> --logical-date D``, the same entrypoint as a
Kubernetes Job), started when the stages it needs are done, at most
``settings.runner_max_parallel`` at a time, with the catalog's retries (exponential backoff)
and timeout (the stage's process group is killed). dbt stages are handed to one warm worker
process per run instead (:mod:`smepulse.runner.dbt_worker`: same command, its own log, exit
code, retries and timeout; ``SMEPULSE_RUNNER_DBT_WORKER=false`` turns it off). Planning is
the pure planner shared with the operator (:mod:`smepulse.planner`); this package does the
I/O.

Semantics worth knowing:

- A failed stage stops the stages that depend on it; independent branches carry on. Finally
  stages (notify) run after the rest whatever happened, with the outcome in their env.
- Trigger stages (daily-etl's ``trigger-ml-predict``) are asynchronous in the catalog, as in
  the cluster where the operator creates the child PipelineRun and moves on. Locally the
  child pipeline runs for the same logical date *after the parent run has finished* (its
  own run id and record, ``triggered_by`` the parent). So, as in the cluster, the parent's
  report shows the latest forecast available before that day's ml-predict. ``--no-trigger``
  (``follow_triggers=False``) records the trigger stage as done and starts nothing.
- ``from_stage`` re-runs that stage and everything downstream; ``only`` runs exactly the
  listed stages. Either way a new run record is made (``<pipeline>-<YYYYMMDD>-<n>``).
  A ``from_stage`` run publishes on top of what its upstream stages left, so it is refused
  (ConfigError, one line naming the stage to start from) unless each of them last succeeded
  for this very date (:func:`smepulse.planner.unpublished_upstream`; the operator applies the
  same rule to ``spec.fromStage``).
- Every run is recorded in ``settings.runs_dir/<run-id>/run.json`` beside its stage logs.
  A run whose runner died (SIGKILL, power loss) shows as ``Interrupted`` in ``smepulse runs``;
  ``resume=True`` (``smepulse run … --resume``) continues the newest unfinished run of that
  pipeline and date in the same record: stages that succeeded are kept, the others (and the
  finally stages) run again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from rich.console import Console

from smepulse.catalog import Catalog, load_catalog
from smepulse.errors import ConfigError
from smepulse.planner import unpublished_upstream
from smepulse.runner import history as runs_store
from smepulse.runner.env import settings_env
from smepulse.runner.execute import StageCommand, default_command
from smepulse.runner.history import RunRecord, StageRecord
from smepulse.runner.run import RunExecution, now_utc
from smepulse.runner.view import history_table, print_summary
from smepulse.settings import Settings

log = logging.getLogger(__name__)


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and pipes: wide enough that run ids and stage names are never cut.
        console.width = max(console.width, 160)
    return console


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
    resume: bool = False,
) -> bool:
    """Run ``pipeline`` for ``logical_date`` (default: settings' business date); True if it
    and every pipeline it triggered succeeded.

    ``catalog`` and ``command`` exist for tests (a small catalog, fake stage commands).
    Raises :class:`ConfigError` for an unknown pipeline or stage name, or when ``resume``
    finds nothing to resume.
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
    keep: dict[str, StageRecord] = {}
    if resume:
        if only or from_stage:
            raise ConfigError("--resume continues a run as it was: drop --only/--from-stage")
        record, keep = _resumable(settings, pipeline, date, p.select())
        selected = [n for n in p.select() if n not in keep and _was_selected(record, n)]
        run_id, run_dir = record.run_id, settings.runs_dir / record.run_id
        record.resumed_at.append(now_utc())
        record.status, record.failed_stage, record.failure_message = "Running", None, None
        record.finished_at = record.duration_seconds = None
        record.triggered = []
        console.print(
            f"resuming {run_id}: {len(keep)} stage(s) already succeeded, "
            f"continuing with {', '.join(selected) or 'the finally stages'}"
        )
    else:
        if from_stage:
            why = unpublished_upstream(
                p, from_stage, date, runs_store.last_success(settings.runs_dir)
            )
            if why:
                raise ConfigError(why)
        run_id, run_dir = runs_store.claim_run_dir(settings.runs_dir, pipeline, date)
        record = RunRecord(
            run_id=run_id,
            pipeline=pipeline,
            logical_date=date,
            started_at=now_utc(),
            from_stage=from_stage,
            only=only,
            params=dict(settings.params),
            triggered_by=triggered_by,
        )
    base_env = settings_env(settings, os.environ)
    run = RunExecution(
        settings,
        p,
        record,
        selected,
        command or default_command,
        console,
        follow_triggers,
        base_env,
        keep,
        dbt_worker=settings.runner_dbt_worker and command is None,
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


def _resumable(
    settings: Settings, pipeline: str, date: dt.date, stages: list[str]
) -> tuple[RunRecord, dict[str, StageRecord]]:
    """The newest run of ``pipeline`` for ``date`` that did not succeed, and its done stages."""
    records = runs_store.runs_for(settings.runs_dir, pipeline, date)
    if not records or records[-1].status == "Succeeded":
        raise ConfigError(
            f"--resume: no unfinished run of {pipeline} for {date} in {settings.runs_dir}"
            + (f" (the newest, {records[-1].run_id}, succeeded)" if records else "")
        )
    record = records[-1]
    if record.status == "Running":
        raise ConfigError(
            f"--resume: {record.run_id} is still running (runner pid {record.runner_pid} "
            f"on {record.runner_host}); wait for it or stop it first"
        )
    for pid in runs_store.stop_leftovers(record):
        log.warning(
            "%s: stopped stage process group %d left by its dead runner", record.run_id, pid
        )
    keep = {st.name: st for st in record.stages if st.name in stages and st.state == "Succeeded"}
    return record, keep


def _was_selected(record: RunRecord, name: str) -> bool:
    """Was main stage ``name`` part of ``record``'s run (records list only selected stages)?"""
    return any(st.name == name and st.state != "not-selected" for st in record.stages)


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
