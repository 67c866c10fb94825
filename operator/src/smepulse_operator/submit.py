"""``smepulse submit``: create a PipelineRun idempotently (what the chart's CronJobs run).

The name is deterministic, ``<pipeline>-<YYYYMMDD>`` of the logical date, so a CronJob that
fires twice, or a retried CronJob Pod, finds the run already there and exits 0 saying so.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import typer

from smepulse.catalog import load_catalog
from smepulse.errors import ConfigError, StageError
from smepulse.settings import Settings
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube, api_client, default_namespace
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
    namespace = default_namespace(settings)
    name = run_name(pipeline, date)
    kube = Kube(api_client(settings))
    try:
        created = kube.create_run(render_run(name, namespace, pipeline, date, params))
    except (ApiRejected, ApiUnavailable) as exc:
        raise StageError(f"could not submit {pipeline} for {date}: {exc}") from None
    finally:
        kube.api.close()
    if created:
        typer.echo(f"pipelinerun {namespace}/{name} created")
        log.info("submitted %s/%s", namespace, name)
    else:
        typer.echo(f"pipelinerun {namespace}/{name} already exists: nothing to do")
        log.info("%s/%s already exists", namespace, name)
    return name
