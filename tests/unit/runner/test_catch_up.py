"""Catch-up: the missed days (a hand-checked table), and ``smepulse run --catch-up`` on the
local runner with fake stage commands (real subprocesses, no data): three missed days run in
date order after an outage, each exactly once, and a second catch-up runs nothing."""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from smepulse.catalog import Catalog, parse_catalog
from smepulse.catchup import CatchUp, catch_up_dates, is_daily
from smepulse.errors import ConfigError
from smepulse.runner import history as runs_store
from smepulse.runner import run_pipeline
from smepulse.runner.catchup import catch_up_locally
from smepulse.runner.execute import StageCommand
from smepulse.settings import Settings

pytestmark = pytest.mark.unit

D = dt.date


@pytest.mark.parametrize(
    ("last", "today", "max_runs", "dates", "left_out"),
    [
        (None, D(2025, 1, 5), 7, [D(2025, 1, 5)], []),  # first install: no history replay
        (D(2025, 1, 5), D(2025, 1, 5), 7, [D(2025, 1, 5)], []),  # today done: no-op resubmit
        (D(2025, 1, 4), D(2025, 1, 5), 7, [D(2025, 1, 5)], []),  # the ordinary day
        (
            D(2025, 1, 1),
            D(2025, 1, 5),
            7,
            [D(2025, 1, 2), D(2025, 1, 3), D(2025, 1, 4), D(2025, 1, 5)],
            [],
        ),
        (
            D(2025, 1, 1),
            D(2025, 1, 10),
            3,
            [D(2025, 1, 8), D(2025, 1, 9), D(2025, 1, 10)],
            [D(2025, 1, n) for n in range(2, 8)],
        ),
        (D(2024, 12, 30), D(2025, 1, 2), 7, [D(2024, 12, 31), D(2025, 1, 1), D(2025, 1, 2)], []),
    ],
)
def test_missed_days(
    last: dt.date | None,
    today: dt.date,
    max_runs: int,
    dates: list[dt.date],
    left_out: list[dt.date],
) -> None:
    assert catch_up_dates(last, today, max_runs) == CatchUp(dates, left_out)


def test_the_note_names_the_days_left_out_and_how_to_run_them() -> None:
    plan = catch_up_dates(D(2025, 1, 1), D(2025, 1, 10), 3)
    assert plan.note("daily-etl", "`smepulse backfill daily-etl --from {first} --to {last}`") == (
        "catch-up of daily-etl: 6 missed day(s) 2025-01-02..2025-01-07 are beyond the bound of "
        "3 run(s); run them with `smepulse backfill daily-etl --from 2025-01-02 --to 2025-01-07`"
    )
    assert catch_up_dates(D(2025, 1, 1), D(2025, 1, 3), 3).note("p", "x") is None
    with pytest.raises(ValueError, match="at least 1"):
        catch_up_dates(None, D(2025, 1, 1), 0)


@pytest.mark.parametrize(
    ("schedule", "daily"),
    [("0 2 * * *", True), ("30 23 * * *", True), ("0 1 * * 0", False), ("0 0 1 * *", False),
     ("* * * * *", False), (None, False), ("0 2 * *", False)],
)  # fmt: skip
def test_only_daily_schedules_catch_up(schedule: str | None, daily: bool) -> None:
    assert is_daily(schedule) is daily


#: What the catalog says the stages run; never called here (the stage command is faked).
RUN = "smepulse.stages.notify:run"


def _catalog() -> Catalog:
    return parse_catalog(
        {
            "defaults": {"timeoutSeconds": 30, "retries": {"limit": 0, "backoffSeconds": 0}},
            "pipelines": {
                "daily": {"schedule": "0 2 * * *", "stages": [{"name": "a", "run": RUN}, {"name": "b", "needs": ["a"], "run": RUN}]},
                "weekly": {"schedule": "0 1 * * 0", "stages": [{"name": "a", "run": RUN}]},
            },
        }
    )  # fmt: skip


def _recorder(marks: Path, fail_on: dt.date | None = None) -> StageCommand:
    def command(name: str, logical_date: dt.date) -> list[str]:
        code = 1 if (logical_date == fail_on and name == "b") else 0
        script = (
            f"open({str(marks)!r}, 'a').write({f'{logical_date} {name}'!r} + '\\n')\n"
            f"raise SystemExit({code})\n"
        )
        return [sys.executable, "-c", script]

    return command


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_local_catch_up_runs_three_missed_days_in_order_each_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    marks = tmp_path / "ran.txt"
    cat = _catalog()
    assert run_pipeline(
        settings, "daily", D(2025, 1, 1), catalog=cat, command=_recorder(marks), console=_quiet()
    )
    # Outage on 2, 3, 4 January; on the 5th the catch-up runs 2..5 in order.
    kwargs = {"catalog": cat, "command": _recorder(marks), "console": _quiet()}
    assert catch_up_locally(settings, "daily", D(2025, 1, 5), 7, **kwargs)
    assert marks.read_text().splitlines() == [
        f"2025-01-0{day} {stage}" for day in (1, 2, 3, 4, 5) for stage in ("a", "b")
    ]
    # Again on the same day: nothing left to run.
    assert catch_up_locally(settings, "daily", D(2025, 1, 5), 7, **kwargs)
    assert len(marks.read_text().splitlines()) == 10
    ids = sorted(r.run_id for r in runs_store.history(settings.runs_dir))
    assert ids == [f"daily-2025010{day}" for day in (1, 2, 3, 4, 5)]


def test_local_catch_up_stops_at_a_failed_day_and_resumes_there(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    marks = tmp_path / "ran.txt"
    cat = _catalog()
    assert run_pipeline(
        settings, "daily", D(2025, 1, 1), catalog=cat, command=_recorder(marks), console=_quiet()
    )
    failing = {"catalog": cat, "command": _recorder(marks, D(2025, 1, 3)), "console": _quiet()}
    assert not catch_up_locally(settings, "daily", D(2025, 1, 5), 7, **failing)
    assert marks.read_text().splitlines()[-1] == "2025-01-03 b"  # 4 and 5 did not start
    fixed = {"catalog": cat, "command": _recorder(marks), "console": _quiet()}
    assert catch_up_locally(settings, "daily", D(2025, 1, 5), 7, **fixed)
    assert [m for m in marks.read_text().splitlines() if m.endswith(" a")] == [
        "2025-01-01 a", "2025-01-02 a", "2025-01-03 a", "2025-01-03 a", "2025-01-04 a", "2025-01-05 a",
    ]  # fmt: skip


def test_local_catch_up_refuses_a_weekly_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="weekly is not daily"):
        catch_up_locally(Settings(home=tmp_path), "weekly", D(2025, 1, 5), 7, catalog=_catalog())
