"""Benchmark the synthetic generator (and validate-bronze): wall time and peak memory.

Each measurement runs in a fresh child process; its peak RSS is that child's ``ru_maxrss``
from ``os.wait4`` (the whole process, numpy/Arrow buffers included, not just Python objects).

    python benchmarks/bench_generate.py              # scale 1 (target: < 60 s, < 2 GB)
    python benchmarks/bench_generate.py --scale10    # also scale 10 (must complete)
    python benchmarks/bench_generate.py --validate   # also time validate-bronze on each
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

END = dt.date(2025, 6, 30)
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 2048.0


def child_generate(home: Path, scale: float, out: Path) -> None:
    from smepulse.settings import Settings
    from smepulse.synth.generate import GeneratorConfig, generate

    summary = generate(
        Settings(home=home), GeneratorConfig(end_date=END, scale=scale), show_progress=False
    )
    out.write_text(
        json.dumps({"rows": summary.rows, "keys": summary.keys, "anomalies": summary.anomalies})
    )


def child_validate(home: Path, out: Path) -> None:
    from smepulse.bronze.store import LocalStore
    from smepulse.bronze.validate import validate

    result = validate(LocalStore(home / "bronze"), END)
    out.write_text(json.dumps({"problems": result.problems.total, "files": len(result.files)}))


def measure(args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Run this script as a child with ``args``; return (seconds, peak RSS MiB, its JSON)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", *args, "--out", str(out)], stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit code {proc.returncode}")
    data: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return seconds, usage.ru_maxrss / 1024.0, data  # ru_maxrss is KiB on Linux


def bench(scale: float, with_validate: bool) -> bool:
    with tempfile.TemporaryDirectory(prefix="smepulse-bench-") as tmp:
        home = Path(tmp)
        seconds, rss, data = measure(["generate", "--home", str(home), "--scale", str(scale)])
        size = sum(p.stat().st_size for p in (home / "bronze").rglob("*.parquet"))
        print(
            f"\ngenerate scale {scale:g}: wall {seconds:.1f} s, peak RSS {rss:.0f} MiB, bronze {size / 2**20:.1f} MiB"
        )
        for table, rows in data["rows"].items():
            print(f"  {table:<18} {rows:>10,} rows  {data['keys'][table]:>10,} keys")
        print(f"  planted anomalies  {data['anomalies']:>10,}")
        ok = True
        if scale == 1:
            ok = seconds < TARGET_SECONDS and rss < TARGET_RSS_MIB
            print(
                f"  target < {TARGET_SECONDS:.0f} s and < {TARGET_RSS_MIB:.0f} MiB: {'met' if ok else 'MISSED'}"
            )
        if with_validate:
            v_seconds, v_rss, v = measure(["validate", "--home", str(home)])
            print(f"validate-bronze scale {scale:g}: wall {v_seconds:.1f} s, peak RSS {v_rss:.0f} MiB, "
                  f"{v['files']} files, {v['problems']} problems")  # fmt: skip
            ok = ok and v["problems"] == 0
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale10", action="store_true", help="also run scale 10")
    parser.add_argument("--validate", action="store_true", help="also time validate-bronze")
    parser.add_argument("--child", choices=["generate", "validate"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "generate":
            child_generate(args.home, args.scale, args.out)
        else:
            child_validate(args.home, args.out)
        return 0
    ok = all([bench(1.0, args.validate)] + ([bench(10.0, args.validate)] if args.scale10 else []))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
