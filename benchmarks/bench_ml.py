"""UC09 benchmark: the book-based forecast against ETS, Prophet and the seasonal naive, on
two synthetic businesses.

Usage::

    python benchmarks/bench_ml.py --prepare              # generate both businesses, build silver
    python benchmarks/bench_ml.py                        # homes already prepared
    python benchmarks/bench_ml.py --business distributor # one business only

For each business (``smepulse generate-data --business <name>``, into ``<home>-<name>``) it
runs the nested rolling-origin backtest of :mod:`smepulse.ml.uc09_nested` with the real
candidates on the silver tables the real stages built: every model is fitted at every cut-off
on the data (and, for the book model, the book) as of that cut-off. It prints each model's
MASE and 80 % interval coverage on the outer folds, the selection procedure's nested figure,
and checks the issue's targets: book MASE at least 20 % below ETS, coverage within ±5 points
of the level. A missed target prints FAIL and the exit code is 1. Training-stage time and
artefact size are measured by running the real ``uc09-train`` stage on the first business.
(UC10 figures: ``benchmarks/bench_uc10.py``. What any book model could reach on the
distributor — an oracle that knows the true payment laws: ``benchmarks/bench_uc09_oracle.py``.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSINESSES = ("distributor", "highlands")


def prepare(home: Path, business: str, end: dt.date) -> None:
    """Generate one business and build silver with the real stages."""
    steps = [
        ["generate-data", "--business", business, "--end-date", end.isoformat()],
        ["stage", "validate-bronze", "--logical-date", end.isoformat()],
        ["stage", "dbt-silver", "--logical-date", end.isoformat()],
    ]
    for args in steps:
        print(f"$ SMEPULSE_HOME={home} smepulse {' '.join(args)}", flush=True)
        subprocess.run(["env", f"SMEPULSE_HOME={home}", "smepulse", *args], check=True)


def bench_business(
    home: Path, business: str, end: dt.date, folds: int, inner: int
) -> list[tuple[str, bool]]:
    from smepulse.ml import uc09_train
    from smepulse.ml.cashflow import CashflowSpec
    from smepulse.ml.data import load_daily_cashflow
    from smepulse.ml.uc09_book_data import load_book
    from smepulse.ml.uc09_nested import nested_backtest
    from smepulse.settings import Settings

    settings = Settings(home=home, logical_date=end, log_level="WARNING")
    level = settings.ml_forecast_interval
    daily = load_daily_cashflow(settings, end)
    book = load_book(settings, end)
    specs = [CashflowSpec(kind=k, target="net", level=level) for k in ("ets", "prophet")]
    forecasters = uc09_train.candidate_forecasters(settings, daily, specs, book)
    start = time.perf_counter()
    result = nested_backtest(
        daily,
        forecasters,
        settings.ml_forecast_horizon_days,
        folds,
        inner,
        baseline="seasonal_naive/net",
    )
    seconds = time.perf_counter() - start
    print(
        f"\n== {business}: {len(daily)} days up to {end}; {result.outer} outer folds x "
        f"{result.horizon} days (+{result.inner} inner), cut-offs {', '.join(result.cutoffs)}"
    )
    print(
        f"{'model':<22}{'MASE':>8}{'RMSSE':>8}{'coverage':>10}{'backtest s':>12}   MASE by outer fold"
    )
    for label in result.per_fold:
        sc = result.candidate_score(label)
        by_fold = " ".join(f"{float(f['mase']):.3f}" for f in sc.folds)
        print(
            f"{label:<22}{sc.mase:>8.3f}{sc.rmsse:>8.3f}{sc.coverage:>10.3f}"
            f"{result.seconds[label]:>12.1f}   {by_fold}"
        )
    proc = result.procedure_score()
    picks = ", ".join(str(s["chosen"]) for s in result.selections)
    print(
        f"{'selection procedure':<22}{proc.mase:>8.3f}{proc.rmsse:>8.3f}{proc.coverage:>10.3f}"
        f"{seconds:>12.1f}   picks per outer fold: {picks}; at {end}: {result.chosen}"
    )
    book_s, ets_s = result.candidate_score("book"), result.candidate_score("ets/net")
    gain = 1 - book_s.mase / ets_s.mase
    return [
        (
            f"{business}: book MASE {book_s.mase:.3f} vs ETS {ets_s.mase:.3f} "
            f"({100 * gain:+.1f} % better; target >= 20 %)",
            gain >= 0.20,
        ),
        (
            f"{business}: book 80 % coverage {100 * book_s.coverage:.1f} % (target 75-85 %)",
            abs(book_s.coverage - level) <= 0.05,
        ),
    ]


def bench_stage(home: Path, end: dt.date) -> None:
    """The real uc09-train stage against a scratch MLflow store: wall time, artefact size."""
    from smepulse.logs import setup_logging
    from smepulse.ml import registry, uc09_train
    from smepulse.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    settings = Settings(
        home=home,
        logical_date=end,
        log_level="WARNING",
        mlflow_tracking_uri=f"sqlite:///{scratch / 'mlflow.db'}",
        mlflow_artifact_uri=(scratch / "artifacts").as_uri(),
    )
    setup_logging(settings)
    start = time.perf_counter()
    uc09_train.run(settings)
    seconds = time.perf_counter() - start
    with registry.tracking(settings) as client:
        version = registry.latest(client, registry.UC09_MODEL)
        assert version is not None
        m = registry.run_metrics(client, version.run_id)
    print(
        f"\nuc09-train stage: {seconds:.1f} s (final fit {m['fit_seconds']:.1f} s), artefact "
        f"{m['artifact_mb']:.3f} MB, registered {version.tags.get('model_kind')} with nested "
        f"MASE {m['mase']:.3f}, coverage {m['coverage']:.3f}"
    )
    shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, default=Path(".smepulse-bench"), help="prefix of the homes"
    )
    parser.add_argument("--business", default=",".join(BUSINESSES))
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--folds", type=int, default=4, help="outer folds")
    parser.add_argument("--inner", type=int, default=2, help="inner folds of the selection")
    parser.add_argument(
        "--prepare", action="store_true", help="generate data and run dbt-silver first"
    )
    parser.add_argument("--stage", action="store_true", help="also time the uc09-train stage")
    args = parser.parse_args()
    businesses = [b for b in args.business.split(",") if b]
    homes = {b: Path(f"{args.home.resolve()}-{b}") for b in businesses}
    if args.prepare:
        for business, home in homes.items():
            prepare(home, business, args.end_date)
    from smepulse.logs import setup_logging
    from smepulse.settings import Settings

    setup_logging(Settings(log_level="WARNING"))
    checks: list[tuple[str, bool]] = []
    for business, home in homes.items():
        checks += bench_business(home, business, args.end_date, args.folds, args.inner)
    if args.stage:
        bench_stage(homes[businesses[0]], args.end_date)
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
