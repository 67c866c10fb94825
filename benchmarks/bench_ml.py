"""UC09/UC10 benchmark: backtest figures side by side, training time and artefact size.

Usage::

    python benchmarks/bench_ml.py --prepare                # fresh home: generate, validate, dbt-silver
    python benchmarks/bench_ml.py --home /tmp/mldev        # a home whose silver tables exist

It runs the real ``uc09-train`` and ``uc10-train`` stages (their own backtests) against a
scratch MLflow store inside the home, reads the figures they logged, adds UC10 figures for
each of the last four 7-day windows, and checks the issue's targets. Nothing is faked: a
missed target prints FAIL and the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {
    "mase": 1.0,
    "roc_auc": 0.90,
    "precision_at_k": 0.70,
    "train_seconds": 60.0,
    "artifact_mb": 100.0,
}


def prepare(home: Path, end: dt.date) -> None:
    """Generate the default data set and build silver with the real stages."""
    steps = [
        ["generate-data", "--end-date", end.isoformat()],
        ["stage", "validate-bronze", "--logical-date", end.isoformat()],
        ["stage", "dbt-silver", "--logical-date", end.isoformat()],
    ]
    for args in steps:
        print(f"$ smepulse {' '.join(args)}", flush=True)
        # `env` adds SMEPULSE_HOME to the inherited environment for the child only.
        subprocess.run(["env", f"SMEPULSE_HOME={home}", "smepulse", *args], check=True)


def _doc(client: Any, run_id: str, name: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(run_id, name, tmp)).read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".smepulse-bench"))
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument(
        "--prepare", action="store_true", help="generate data and run dbt-silver first"
    )
    args = parser.parse_args()
    home: Path = args.home.resolve()
    end: dt.date = args.end_date
    if args.prepare:
        prepare(home, end)

    from smepulse.logs import setup_logging
    from smepulse.ml import registry, uc09_train, uc10_train
    from smepulse.ml.backtest import evaluate_detector
    from smepulse.ml.data import load_anomaly_labels, load_transactions
    from smepulse.ml.features import build_features
    from smepulse.ml.uc10_models import AnomalySpec
    from smepulse.settings import Settings

    # A scratch MLflow store: the benchmark never touches the home's real registry.
    scratch = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    settings = Settings(
        home=home,
        logical_date=end,
        log_level="WARNING",
        mlflow_tracking_uri=f"sqlite:///{scratch / 'mlflow.db'}",
        mlflow_artifact_uri=(scratch / "artifacts").as_uri(),
    )
    setup_logging(settings)
    seconds: dict[str, float] = {}
    for name, stage in (("uc09", uc09_train.run), ("uc10", uc10_train.run)):
        start = time.perf_counter()
        stage(settings)
        seconds[name] = time.perf_counter() - start

    with registry.tracking(settings) as client:
        v09 = registry.latest(client, registry.UC09_MODEL)
        v10 = registry.latest(client, registry.UC10_MODEL)
        assert v09 is not None and v10 is not None
        m09, m10 = (
            registry.run_metrics(client, v09.run_id),
            registry.run_metrics(client, v10.run_id),
        )
        backtest = _doc(client, v09.run_id, "backtest.json")
        evaluation = _doc(client, v10.run_id, "evaluation.json")

    print(f"\nSME Pulse ML benchmark — data up to {end}, home {home}")
    print(
        f"\nUC09 rolling-origin backtest: {backtest['folds']} folds x {backtest['horizon_days']} days, "
        f"net cash flow scored; interval level {settings.ml_forecast_interval:.0%}"
    )
    print(
        f"{'model/target':<22}{'MASE':>8}{'RMSSE':>8}{'sMAPE':>8}{'coverage':>10}{'backtest s':>12}"
    )
    for label, score in sorted(backtest["candidates"].items(), key=lambda kv: kv[1]["mase"]):
        mark = "  <- registered" if label == backtest["chosen"] else ""
        secs = m09.get(f"backtest_seconds.{label.replace('/', '_')}", float("nan"))
        print(
            f"{label:<22}{score['mase']:>8.3f}{score['rmsse']:>8.3f}{score['smape']:>8.3f}"
            f"{score['coverage']:>10.2f}{secs:>12.1f}{mark}"
        )
    print(
        "per-fold MASE of the registered model:",
        ", ".join(
            f"{f['cutoff']}: {f['mase']:.3f}"
            for f in backtest["candidates"][backtest["chosen"]]["folds"]
        ),
    )

    first = next(iter(evaluation.values()))
    print(
        f"\nUC10 held-out window {first['window_start']}..{first['window_end']}: "
        f"{first['n_transactions']} transactions, k = {first['k']} planted anomalies"
    )
    print(f"{'detector':<18}{'ROC-AUC':>9}{'AP':>8}{'P@k':>8}{'alert rate':>12}{'recall@thr':>12}")
    for kind, s in evaluation.items():
        print(
            f"{kind:<18}{s['roc_auc']:>9.3f}{s['average_precision']:>8.3f}{s['precision_at_k']:>8.3f}"
            f"{s['alert_rate']:>12.3f}{s['recall_at_threshold']:>12.3f}"
        )

    labels = load_anomaly_labels(settings) or set()
    features = build_features(load_transactions(settings, end), settings.timezone, cutoff=end)
    print(
        "\nUC10 week by week (IsolationForest vs robust z; each week scored by a model fitted before it)"
    )
    print(
        f"{'week':<24}{'n':>6}{'k':>5}{'IF ROC':>8}{'IF AP':>8}{'IF P@k':>8}{'z AP':>8}{'z P@k':>8}"
    )
    for i in range(3, -1, -1):
        week_stop = end - dt.timedelta(days=7 * i)
        week_start = week_stop - dt.timedelta(days=6)
        iso = evaluate_detector(
            features, labels, AnomalySpec("isolation_forest"), week_start, week_stop
        )
        rz = evaluate_detector(features, labels, AnomalySpec("robust_z"), week_start, week_stop)
        print(
            f"{f'{week_start}..{week_stop}':<24}{iso.n_transactions:>6}{iso.k:>5}{iso.roc_auc:>8.3f}"
            f"{iso.average_precision:>8.3f}{iso.precision_at_k:>8.3f}{rz.average_precision:>8.3f}"
            f"{rz.precision_at_k:>8.3f}"
        )

    print("\nTraining (whole stage: backtests + final fit + MLflow logging)")
    print(
        f"uc09-train {seconds['uc09']:.1f} s (final fit {m09['fit_seconds']:.1f} s), artefact {m09['artifact_mb']:.2f} MB"
    )
    print(
        f"uc10-train {seconds['uc10']:.1f} s (final fit {m10['fit_seconds']:.1f} s), artefact {m10['artifact_mb']:.2f} MB"
    )
    print(
        f"UC10 threshold {m10['threshold']:.4f}: flags {settings.ml_anomaly_alert_rate:.1%} of training, "
        f"{m10['recent_alert_rate']:.1%} of the last {settings.ml_anomaly_window_days} days"
    )

    iso = evaluation["isolation_forest"]
    checks = [
        (
            f"UC09 champion MASE {m09['mase']:.3f} < {TARGETS['mase']}",
            m09["mase"] < TARGETS["mase"],
        ),
        (
            f"UC10 IsolationForest ROC-AUC {iso['roc_auc']:.3f} >= {TARGETS['roc_auc']}",
            iso["roc_auc"] >= TARGETS["roc_auc"],
        ),
        (
            f"UC10 IsolationForest precision@k {iso['precision_at_k']:.3f} >= {TARGETS['precision_at_k']} (k={iso['k']})",
            iso["precision_at_k"] >= TARGETS["precision_at_k"],
        ),
        (
            f"training uc09 {seconds['uc09']:.0f} s, uc10 {seconds['uc10']:.0f} s < {TARGETS['train_seconds']:.0f} s",
            max(seconds.values()) < TARGETS["train_seconds"],
        ),
        (
            f"artefacts {m09['artifact_mb']:.2f} MB, {m10['artifact_mb']:.2f} MB < {TARGETS['artifact_mb']:.0f} MB",
            max(m09["artifact_mb"], m10["artifact_mb"]) < TARGETS["artifact_mb"],
        ),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
