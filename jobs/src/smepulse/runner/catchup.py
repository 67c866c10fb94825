"""``smepulse run <pipeline> --catch-up``: the local runner's catch-up (see smepulse.catchup).

The last logical date that succeeded comes from the run history (complete runs only: not
``--only``/``--from-stage``); each missed day then runs in date order as an ordinary run, and
a day that already has a complete successful run is never run again. Stops at the first day
that fails: later days usually build on earlier ones, and the next catch-up resumes there.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from rich.console import Console

from smepulse.catalog import Catalog, load_catalog
from smepulse.catchup import catch_up_dates, is_daily
from smepulse.errors import ConfigError
from smepulse.runner import history as runs_store
from smepulse.runner import run_pipeline
from smepulse.runner.execute import StageCommand
from smepulse.settings import Settings


def last_succeeded(settings: Settings, pipeline: str) -> dt.date | None:
    """Newest logical date with a complete successful local run of ``pipeline``."""
    dates = [
        r.logical_date
        for r in runs_store.history(settings.runs_dir)
        if r.pipeline == pipeline and r.status == "Succeeded" and not r.only and not r.from_stage
    ]
    return max(dates, default=None)


def catch_up_locally(
    settings: Settings,
    pipeline: str,
    today: dt.date | None,
    max_runs: int,
    follow_triggers: bool = True,
    *,
    catalog: Catalog | None = None,
    command: StageCommand | None = None,
    console: Console | None = None,
) -> bool:
    """Run the missed days of ``pipeline`` up to ``today`` oldest first; True if all succeeded."""
    catalog = catalog or load_catalog()
    try:
        schedule = catalog.pipeline(pipeline).schedule
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if not is_daily(schedule):
        raise ConfigError(f"--catch-up needs a daily schedule; {pipeline} is not daily")
    console = console or Console(highlight=False)
    end = today or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    plan = catch_up_dates(last_succeeded(settings, pipeline), end, max_runs)
    note = plan.note(pipeline, f"`smepulse backfill {pipeline} --from {{first}} --to {{last}}`")
    if note:
        console.print(note, markup=False)
    console.print(
        f"catch-up of {pipeline}: {', '.join(d.isoformat() for d in plan.dates)}", markup=False
    )
    for day in plan.dates:
        done = runs_store.succeeded_before(settings.runs_dir, pipeline, day)
        if done is not None:
            console.print(f"{day}: already done by {done.run_id}, skipped", markup=False)
            continue
        ok = run_pipeline(
            settings,
            pipeline,
            day,
            follow_triggers=follow_triggers,
            catalog=catalog,
            command=command,
            console=console,
        )
        if not ok:
            console.print(
                f"catch-up stopped at {day}: fix the failure and run the same command again",
                markup=False,
            )
            return False
    return True
