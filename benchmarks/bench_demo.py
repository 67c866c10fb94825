#!/usr/bin/env python3
"""Time ``smepulse demo`` on a fresh project folder and print the figures.

    python benchmarks/bench_demo.py [--scale 1.0] [--end-date 2025-06-30] [--keep]

Runs the real CLI in a new temporary SMEPULSE_HOME (offline: nothing but the bundled
snapshot is used), then prints the wall time, the CPU time of the whole process tree, the
machine's load average before and after (the demo shares the CPU with whatever else runs),
the duration of each pipeline run and the row counts of the expected tables. The target is
under 5 minutes at scale 1.0 on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from smepulse.runner import history as runs_store

TARGET_SECONDS = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1.0")
    parser.add_argument("--end-date", default="2025-06-30")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="smepulse-bench-demo-"))
    home = root / "home"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_") and k != "REDIS_URL"
    }
    env["SMEPULSE_HOME"] = str(home)
    load_before = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "smepulse.cli", "demo", "--scale", args.scale, "--end-date", args.end_date],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"smepulse demo --scale {args.scale} --end-date {args.end_date}: exit {proc.returncode}")
    print(
        f"wall time      {wall:7.1f} s   (target < {TARGET_SECONDS} s: {'met' if wall < TARGET_SECONDS else 'NOT met'})"
    )
    print(
        f"CPU time       {usage.ru_utime + usage.ru_stime:7.1f} s   (user+sys of the whole process tree)"
    )
    print(
        f"load average   {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)"
    )
    for record in sorted(runs_store.history(home / "runs"), key=lambda r: r.started_at):
        print(f"  {record.run_id:<28} {record.status:<10} {record.duration_seconds or 0:7.1f} s")
    if (home / "warehouse.duckdb").exists():
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        for table in (
            "ml_ar_priority_scores",
            "ml_cashflow_forecast",
            "ml_anomaly_alerts",
            "fct_bank_transactions",
        ):
            try:
                n = con.execute(f"select count(*) from gold.{table}").fetchone()[0]  # type: ignore[index]
                print(f"  gold.{table:<26} {n:>9,} rows")
            except duckdb.Error as exc:
                print(f"  gold.{table:<26} missing ({exc})")
        con.close()
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    if args.keep:
        print(f"project folder kept: {home}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
