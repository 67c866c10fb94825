"""Catch-up: which logical dates a scheduled daily pipeline missed (as Airflow's ``catchup``).

After an outage the chart's CronJobs skip the firings they missed, and a laptop that was off
runs nothing. On the next firing, ``smepulse submit <pipeline> --catch-up`` (cluster) or
``smepulse run <pipeline> --catch-up`` (local) runs every day after the last logical date
that succeeded, up to today, oldest first, each exactly once (deterministic run names in the
cluster, the run history locally), but never more than ``max_runs`` days: an outage longer
than that leaves the older days to an explicit backfill, said in one line.

Pure: the executors supply the last succeeded date and today's date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: Default bound on the days one catch-up runs (the chart's cronJobs.dailyEtl.catchUp.maxRuns).
DEFAULT_MAX_RUNS = 7


@dataclass(frozen=True)
class CatchUp:
    """The dates to run, oldest first, and the missed dates left out by the bound."""

    dates: list[dt.date]
    left_out: list[dt.date]

    def note(self, pipeline: str, how: str) -> str | None:
        """One line about the days left out (``how``: the command to run them), or None.

        ``how`` may use ``{first}`` and ``{last}``.
        """
        if not self.left_out:
            return None
        first, last = self.left_out[0], self.left_out[-1]
        return (
            f"catch-up of {pipeline}: {len(self.left_out)} missed day(s) {first}..{last} are "
            f"beyond the bound of {len(self.dates)} run(s); run them with "
            + how.format(first=first, last=last)
        )


def catch_up_dates(last_succeeded: dt.date | None, today: dt.date, max_runs: int) -> CatchUp:
    """Days after ``last_succeeded`` up to ``today`` (inclusive), at most the newest ``max_runs``.

    Nothing ever succeeded: today only (a first install does not replay history). Today
    already succeeded: today only (submitting it again is a no-op).
    """
    if max_runs < 1:
        raise ValueError(f"catch-up max runs must be at least 1, got {max_runs}")
    if last_succeeded is None or last_succeeded >= today:
        return CatchUp([today], [])
    missed = [
        last_succeeded + dt.timedelta(days=n) for n in range(1, (today - last_succeeded).days + 1)
    ]
    return CatchUp(missed[-max_runs:], missed[:-max_runs])


def is_daily(schedule: str | None) -> bool:
    """``m h * * *``: one firing a day, the only cadence catch-up counts (in days)."""
    fields = (schedule or "").split()
    return len(fields) == 5 and fields[2:] == ["*", "*", "*"] and "*" not in fields[:2]
