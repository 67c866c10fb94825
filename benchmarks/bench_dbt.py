"""Benchmark daily-etl's dbt stages on DuckDB: wall time per stage and in total.

Generates the synthetic data set (not timed), runs external-sync once so dim_province exists
(not timed), then runs each daily dbt stage exactly as the local runner does: a fresh
``smepulse stage <name> --logical-date D`` process, one after the other. Prints the wall time
of every stage, the total, the tests run and failed (from ``<home>/dbt/<stage>.json``), the
gold table counts and the UC05 row count, plus the machine's load average (the figures are
only comparable on a quiet machine).

    python benchmarks/bench_dbt.py                 # default data (target: total < 60 s)
    python benchmarks/bench_dbt.py --scale 10      # ten times the volume
    python benchmarks/bench_dbt.py --home DIR --keep   # keep the data set and warehouse
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = (
    "dbt-silver",
    "dbt-gold-dims",
    "dbt-gold-facts",
    "dbt-gold-links",
    "dbt-gold-kpis",
    "dbt-ml-scores",
)
SETUP_STAGES = ("ingest-provinces", "ingest-worldbank", "dbt-external-silver")
TARGET_SECONDS = 60.0


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")}
    env.update(
        SMEPULSE_HOME=str(home),
        SMEPULSE_LOG_FORMAT="json",
        # The World Bank API is out of reach here: point it at a closed port so the ingest
        # falls back to its bundled snapshot at once.
        SMEPULSE_WORLDBANK_BASE_URL="http://127.0.0.1:9",
        SMEPULSE_HTTP_RETRIES="0",
    )
    return env


def _stage(home: Path, name: str, day: dt.date) -> float:
    started = time.monotonic()
    done = subprocess.run(
        ["smepulse", "stage", name, "--logical-date", day.isoformat()],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"stage {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def _generate(home: Path, scale: float, day: dt.date) -> None:
    done = subprocess.run(
        ["smepulse", "generate-data", "--end-date", day.isoformat(), "--scale", str(scale)],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"generate-data failed:\n{done.stderr[-3000:]}")


def _gold_summary(home: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'gold'"
            ).fetchall()
        ]
        counts = {
            p: sum(1 for n in names if n.startswith(p))
            for p in ("dim_", "fct_", "lnk_", "kpi_", "ml_")
        }
        row = con.execute("select count(*) from gold.ml_ar_priority_scores").fetchone()
        counts["ml_ar_priority_scores_rows"] = int(row[0]) if row else 0
        row = con.execute(
            "select count(*) from gold.fct_ar_invoices where outstanding_vnd > 0"
        ).fetchone()
        counts["open_receivables"] = int(row[0]) if row else 0
        row = con.execute("select count(*) from gold.fct_ar_invoices").fetchone()
        counts["ar_invoices"] = int(row[0]) if row else 0
        return counts
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="data volume (1 = ~30,000 AR invoices)"
    )
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--home", type=Path, help="project folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    parser.add_argument("--repeat", type=int, default=1, help="time the daily stages N times")
    parser.add_argument(
        "--warm-parse",
        action="store_true",
        help="keep dbt's partial-parse state from the setup (default: the first stage parses)",
    )
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-dbt-"))
    try:
        t0 = time.monotonic()
        _generate(home, args.scale, args.end_date)
        for name in SETUP_STAGES:
            _stage(home, name, args.end_date)
        print(
            f"setup (generate scale {args.scale:g} + external-sync): {time.monotonic() - t0:.1f}s"
        )
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for attempt in range(1, args.repeat + 1):
            if not args.warm_parse:
                # A new logical date changes dbt's --vars, so the day's first dbt stage
                # re-parses the project: time that, not a parse left by the setup.
                (home / "dbt" / "target" / "partial_parse.msgpack").unlink(missing_ok=True)
            timings = {name: _stage(home, name, args.end_date) for name in STAGES}
            total = sum(timings.values())
            print(f"\nrun {attempt}: daily-etl dbt stages, one process each")
            n_tests = n_failed = 0
            for name, seconds in timings.items():
                doc = json.loads((home / "dbt" / f"{name}.json").read_text())
                n_tests += doc["n_tests"]
                n_failed += doc["n_failed"]
                print(
                    f"  {name:<16} {seconds:6.1f}s   (dbt {doc['elapsed_seconds']:5.1f}s, "
                    f"{doc['n_models']} models, {doc['n_tests']} tests, {doc['n_failed']} failed)"
                )
            verdict = "OK" if total < TARGET_SECONDS else "over target"
            print(f"  {'total':<16} {total:6.1f}s   target < {TARGET_SECONDS:.0f}s: {verdict}")
            print(
                f"  tests: {n_tests} run, {n_failed} failed ({100 * (n_tests - n_failed) / max(n_tests, 1):.0f} % pass)"
            )
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("gold:", json.dumps(_gold_summary(home)))
    finally:
        if not args.keep and not args.home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
