#!/usr/bin/env python3
"""Time ``smepulse run daily-etl`` end to end, and the CLI's start-up.

    python benchmarks/bench_daily_etl.py                  # scale 1, 3 runs of each mode
    python benchmarks/bench_daily_etl.py --scale 1 --scale 10 --runs 3
    python benchmarks/bench_daily_etl.py --mode process   # only one process per dbt stage

For each scale: generates the synthetic data set into a fresh SMEPULSE_HOME and runs
external-sync once so dim_province exists (neither timed), then runs
``smepulse run daily-etl --no-trigger`` ``--runs`` times for the same logical date in each
mode, the modes alternating run by run: dbt stages in the runner's warm worker, and each in
its own process (``SMEPULSE_RUNNER_DBT_WORKER=false``, the behaviour before the worker). The
triggered ml-predict is left out: it needs trained models and is not daily-etl's own work.
Prints min/median/max of the wall time, of the sum of stage times and of each stage's time
(from the run records), and dbt's own time per stage (``<home>/dbt/<stage>.json``): the
difference between a dbt stage's time and dbt's is start-up. Then the start-up of
``smepulse --help`` and ``smepulse stage verify-infra`` (min/median/max of 5). Offline:
the World Bank ingest falls back to its bundled snapshot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smepulse.runner import history as runs_store

SETUP = ("generate-data", "external-sync")


def _env(home: Path, dbt_worker: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")}
    env.update(
        SMEPULSE_HOME=str(home),
        # The World Bank API is out of reach here: a closed port makes the ingest fall back
        # to its bundled snapshot at once.
        SMEPULSE_WORLDBANK_BASE_URL="http://127.0.0.1:9",
        SMEPULSE_HTTP_RETRIES="0",
        SMEPULSE_RUNNER_DBT_WORKER="true" if dbt_worker else "false",
    )
    return env


def _smepulse(args: Sequence[str], env: dict[str, str], what: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "smepulse.cli", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(
            f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return elapsed


def _stats(values: Sequence[float]) -> str:
    return f"{min(values):6.2f} {statistics.median(values):6.2f} {max(values):6.2f}"


@dataclass
class Figures:
    """What the runs of one mode measured."""

    walls: list[float] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    per_stage: dict[str, list[float]] = field(default_factory=dict)
    dbt_own: dict[str, list[float]] = field(default_factory=dict)

    def add_run(self, home: Path, day: dt.date, wall: float) -> None:
        record = runs_store.runs_for(home / "runs", "daily-etl", day)[-1]
        if record.status != "Succeeded":
            sys.exit(f"{record.run_id}: {record.status}: {record.failure_message}")
        self.walls.append(wall)
        stage_sum = 0.0
        for st in record.stages:
            if st.duration_seconds is None:
                continue
            self.per_stage.setdefault(st.name, []).append(st.duration_seconds)
            stage_sum += st.duration_seconds
            results = home / "dbt" / f"{st.name}.json"
            if results.exists():
                doc = json.loads(results.read_text())
                self.dbt_own.setdefault(st.name, []).append(float(doc["elapsed_seconds"]))
        self.sums.append(stage_sum)

    def print(self, title: str) -> None:
        print(title)
        print(f"  {'':<22} {'min':>6} {'median':>6} {'max':>6}   (seconds)")
        print(f"  {'wall':<22} {_stats(self.walls)}")
        print(f"  {'sum of stage times':<22} {_stats(self.sums)}")
        for name, values in self.per_stage.items():
            own = f"   dbt's own {_stats(self.dbt_own[name])}" if name in self.dbt_own else ""
            print(f"  {name:<22} {_stats(values)}{own}")
        dbt_stages = [n for n in self.per_stage if n in self.dbt_own]
        if dbt_stages:
            startup = [
                sum(self.per_stage[n][i] - self.dbt_own[n][i] for n in dbt_stages)
                for i in range(len(self.walls))
            ]
            print(f"  {'dbt stages - dbt own':<22} {_stats(startup)}   ({len(dbt_stages)} stages)")


MODES = {True: "warm dbt worker", False: "one process per dbt stage"}


def bench_scale(
    scale: float, runs: int, day: dt.date, modes: Sequence[bool], keep: bool
) -> dict[bool, Figures]:
    """Set up one home at ``scale``, then ``runs`` daily-etl runs per mode, modes alternating
    run by run (on a shared machine both see the same load)."""
    home = Path(tempfile.mkdtemp(prefix=f"bench-daily-etl-{scale:g}-"))
    try:
        t0 = time.monotonic()
        env = _env(home, True)
        _smepulse(
            ["generate-data", "--end-date", day.isoformat(), "--scale", str(scale)], env, "generate"
        )
        _smepulse(
            ["run", "external-sync", "--logical-date", day.isoformat(), "--no-trigger"],
            env,
            "external-sync",
        )
        print(f"\nscale {scale:g}: setup (generate + external-sync) {time.monotonic() - t0:.1f}s")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        figures = {mode: Figures() for mode in modes}
        for _ in range(runs):
            for mode in modes:
                wall = _smepulse(
                    ["run", "daily-etl", "--logical-date", day.isoformat(), "--no-trigger"],
                    _env(home, mode),
                    "daily-etl",
                )
                figures[mode].add_run(home, day, wall)
        for mode in modes:
            figures[mode].print(
                f"daily-etl --no-trigger at scale {scale:g}, {runs} run(s), {MODES[mode]}"
            )
        if len(modes) == 2:
            on, off = (statistics.median(figures[m].walls) for m in (True, False))
            print(f"  median wall, worker / one process per stage: {on / off:.2f}")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        return figures
    finally:
        if keep:
            print(f"home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def bench_startup(day: dt.date, repeat: int = 5) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = _env(home, True)
    try:
        helps = [_smepulse(["--help"], env, "smepulse --help") for _ in range(repeat)]
        verify = [
            _smepulse(
                ["stage", "verify-infra", "--logical-date", day.isoformat()], env, "verify-infra"
            )
            for _ in range(repeat)
        ]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nstart-up ({repeat} runs)            {'min':>6} {'median':>6} {'max':>6}")
    print(f"  smepulse --help                {_stats(helps)}")
    print(f"  smepulse stage verify-infra    {_stats(verify)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, action="append", help="data volume (repeatable; default 1)"
    )
    parser.add_argument("--runs", type=int, default=3, help="daily-etl runs per scale")
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument(
        "--mode",
        choices=["both", "worker", "process"],
        default="both",
        help="dbt stages in the warm worker, each in its own process "
        "(SMEPULSE_RUNNER_DBT_WORKER=false), or both alternately (default)",
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    parser.add_argument("--keep", action="store_true", help="keep the homes")
    args = parser.parse_args()
    for scale in args.scale or [1.0]:
        modes = {"both": [False, True], "worker": [True], "process": [False]}[args.mode]
        bench_scale(scale, args.runs, args.end_date, modes, args.keep)
    if not args.no_startup:
        bench_startup(args.end_date)


if __name__ == "__main__":
    main()
