"""``smepulse submit``: create a PipelineRun idempotently (what the chart's CronJobs run).

The name is deterministic, ``<pipeline>-<YYYYMMDD>`` of the logical date, so a CronJob that
fires twice, or a retried CronJob Pod, finds the run already there and exits 0 saying so.

``--catch-up`` (the daily CronJob's default): also submit the days missed since the last
logical date that succeeded (:mod:`smepulse.catchup`), oldest first, with concurrencyPolicy
Queue so that they run one after the other in date order (the operator queues by creation
time, then name, and the names sort by date).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import typer

from smepulse.catalog import load_catalog
from smepulse.catchup import catch_up_dates, is_daily
from smepulse.errors import ConfigError, StageError
from smepulse.settings import Settings
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube, default_namespace
from smepulse_operator.model import run_name
from smepulse_operator.render import render_run

log = logging.getLogger(__name__)


def submit_run(
    settings: Settings,
    pipeline: str,
    logical_date: dt.date | None,
    params: Mapping[str, str],
) -> str:
    """Create the run (or find it) and return its name.

    ConfigError for an unknown pipeline or missing credentials (exit 2); StageError when the
    API server refuses or is unreachable (exit 1), with the server's reason.
    """
    catalog = load_catalog()
    if pipeline not in catalog.pipelines:
        raise ConfigError(f"unknown pipeline {pipeline!r}; known: {', '.join(catalog.pipelines)}")
    date = logical_date or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    name = run_name(pipeline, date)
    try:
        created = kube.create_run(render_run(name, namespace, pipeline, date, params))
    except (ApiRejected, ApiUnavailable) as exc:
        raise StageError(f"could not submit {pipeline} for {date}: {exc}") from None
    finally:
        kube.close()
    if created:
        typer.echo(f"pipelinerun {namespace}/{name} created")
        log.info("submitted %s/%s", namespace, name)
    else:
        typer.echo(f"pipelinerun {namespace}/{name} already exists: nothing to do")
        log.info("%s/%s already exists", namespace, name)
    return name


def last_succeeded(runs: list[dict[str, Any]], pipeline: str) -> dt.date | None:
    """The newest logical date of a complete run of ``pipeline`` that succeeded.

    Partial runs (``spec.stages``/``spec.fromStage``) do not count: they did not run the day.
    """
    dates = []
    for run in runs:
        spec, status = run.get("spec") or {}, run.get("status") or {}
        if spec.get("pipeline") != pipeline or status.get("phase") != "Succeeded":
            continue
        if spec.get("stages") or spec.get("fromStage") or not spec.get("logicalDate"):
            continue
        dates.append(dt.date.fromisoformat(str(spec["logicalDate"])))
    return max(dates, default=None)


def submit_catch_up(
    settings: Settings,
    pipeline: str,
    today: dt.date | None,
    params: Mapping[str, str],
    max_runs: int,
) -> list[str]:
    """Submit every day missed since the last success up to ``today``, oldest first, queued.

    Returns the run names (created or already there). Each date is submitted once: the names
    are deterministic, so a second firing finds them and creates nothing.
    """
    catalog = load_catalog()
    if pipeline not in catalog.pipelines:
        raise ConfigError(f"unknown pipeline {pipeline!r}; known: {', '.join(catalog.pipelines)}")
    if not is_daily(catalog.pipeline(pipeline).schedule):
        raise ConfigError(f"--catch-up needs a daily schedule; {pipeline} is not daily")
    date = today or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    names: list[str] = []
    try:
        plan = catch_up_dates(last_succeeded(kube.list_runs(namespace), pipeline), date, max_runs)
        note = plan.note(pipeline, f"`smepulse submit {pipeline} -d <date>` for each")
        if note:
            typer.echo(note)
            log.warning("%s", note)
        for day in plan.dates:
            name = run_name(pipeline, day)
            body = render_run(
                name, namespace, pipeline, day, params, extra_spec={"concurrencyPolicy": "Queue"}
            )
            created = kube.create_run(body)
            state = "created" if created else "already exists: nothing to do"
            typer.echo(f"pipelinerun {namespace}/{name} {state}")
            names.append(name)
    except (ApiRejected, ApiUnavailable) as exc:
        raise StageError(f"could not catch up {pipeline} up to {date}: {exc}") from None
    finally:
        kube.close()
    log.info("catch-up of %s: %s", pipeline, ", ".join(names))
    return names
