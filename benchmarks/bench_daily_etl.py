#!/usr/bin/env python3
"""Time ``smepulse run daily-etl`` end to end, and the CLI's start-up.

    python benchmarks/bench_daily_etl.py                  # scale 1, 3 runs
    python benchmarks/bench_daily_etl.py --scale 1 --scale 10 --runs 3
    python benchmarks/bench_daily_etl.py --no-dbt-worker  # each dbt stage in its own process

For each scale: generates the synthetic data set into a fresh SMEPULSE_HOME and runs
external-sync once so dim_province exists (neither timed), then runs
``smepulse run daily-etl --no-trigger`` ``--runs`` times for the same logical date (the
triggered ml-predict is left out: it needs trained models and is not daily-etl's own work).
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


def bench_scale(scale: float, runs: int, day: dt.date, dbt_worker: bool, keep: bool) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"bench-daily-etl-{scale:g}-"))
    env = _env(home, dbt_worker)
    try:
        t0 = time.monotonic()
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
        walls: list[float] = []
        sums: list[float] = []
        per_stage: dict[str, list[float]] = {}
        dbt_own: dict[str, list[float]] = {}
        for _ in range(runs):
            walls.append(
                _smepulse(
                    ["run", "daily-etl", "--logical-date", day.isoformat(), "--no-trigger"],
                    env,
                    "daily-etl",
                )
            )
            record = runs_store.runs_for(home / "runs", "daily-etl", day)[-1]
            if record.status != "Succeeded":
                sys.exit(f"{record.run_id}: {record.status}: {record.failure_message}")
            stage_sum = 0.0
            for st in record.stages:
                if st.duration_seconds is None:
                    continue
                per_stage.setdefault(st.name, []).append(st.duration_seconds)
                stage_sum += st.duration_seconds
                results = home / "dbt" / f"{st.name}.json"
                if results.exists():
                    doc = json.loads(results.read_text())
                    dbt_own.setdefault(st.name, []).append(float(doc["elapsed_seconds"]))
            sums.append(stage_sum)
        mode = "warm dbt worker" if dbt_worker else "one process per dbt stage"
        print(f"daily-etl --no-trigger at scale {scale:g}, {runs} run(s), {mode}")
        print(f"  {'':<22} {'min':>6} {'median':>6} {'max':>6}   (seconds)")
        print(f"  {'wall':<22} {_stats(walls)}")
        print(f"  {'sum of stage times':<22} {_stats(sums)}")
        for name, values in per_stage.items():
            own = f"   dbt's own {_stats(dbt_own[name])}" if name in dbt_own else ""
            print(f"  {name:<22} {_stats(values)}{own}")
        dbt_stages = [n for n in per_stage if n in dbt_own]
        if dbt_stages:
            startup = [
                sum(per_stage[n][i] - dbt_own[n][i] for n in dbt_stages) for i in range(runs)
            ]
            print(f"  {'dbt stages - dbt own':<22} {_stats(startup)}   ({len(dbt_stages)} stages)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
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
        "--no-dbt-worker",
        action="store_true",
        help="run each dbt stage in its own process (SMEPULSE_RUNNER_DBT_WORKER=false)",
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    parser.add_argument("--keep", action="store_true", help="keep the homes")
    args = parser.parse_args()
    for scale in args.scale or [1.0]:
        bench_scale(scale, args.runs, args.end_date, not args.no_dbt_worker, args.keep)
    if not args.no_startup:
        bench_startup(args.end_date)


if __name__ == "__main__":
    main()
