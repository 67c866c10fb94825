"""UC10 benchmark: the served detector against the robust-z baseline, per business.

Usage::

    python benchmarks/bench_uc10.py --home DIR [--home DIR2 ...] [--weeks 12] [--end-date D]

Each ``--home`` is a SMEPULSE_HOME holding a generated business (``bronze/`` and the planted
labels under ``labels/``). The evaluation replays weekly retraining: for each of the last
``--weeks`` local weeks up to the end date, both detectors are fitted on every transaction
before that week (features are leak-free, so a transaction's features only use its past) and
score the week, exactly as ``uc10-train`` then ``uc10-detect`` would. Pooled over the weeks:
ROC-AUC, average precision, precision@k (k = labelled anomalies), and, at the threshold each
model actually serves, precision, recall and the alert rate per week (min / median / max).
The labels are only read to score; neither detector sees them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

SERVED = "ensemble"
BASELINE = "robust_z"


def load_business(home: Path) -> tuple[pd.DataFrame, set[str]]:
    """Bank transactions from bronze (newest version per txn_id) and the planted labels."""
    data = ds.dataset(home / "bronze" / "bank_transactions", format="parquet", partitioning="hive")
    frame = data.to_table().to_pandas()
    frame = frame.sort_values("updated_at").drop_duplicates("txn_id", keep="last")
    frame["txn_at"] = pd.to_datetime(frame["txn_at"]).dt.tz_convert("UTC").dt.tz_localize(None)
    frame["amount_vnd"] = frame["amount_vnd"].astype(float)
    frame["txn_id"] = frame["txn_id"].astype(str)
    labels_files = sorted((home / "labels").glob("*.parquet"))
    if not labels_files:
        sys.exit(f"{home}/labels/ holds no label file: generate the business first")
    labels: set[str] = set()
    for path in labels_files:
        labels |= set(pd.read_parquet(path, columns=["txn_id"])["txn_id"].astype(str))
    return frame, labels


def walk_forward(
    features: pd.DataFrame, labels: set[str], kind: str, end: dt.date, weeks: int, alert_rate: float
) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from smepulse.ml.features import feature_matrix
    from smepulse.ml.uc10_models import AnomalyModel, AnomalySpec

    day = features["local_at"].dt.date
    truth_all, scores_all, flags_all, rates = [], [], [], []
    for w in range(weeks, 0, -1):
        stop = end - dt.timedelta(days=7 * (w - 1))
        start = stop - dt.timedelta(days=6)
        train = features[day < start]
        week = features[(day >= start) & (day <= stop)]
        model = AnomalyModel(AnomalySpec(kind=kind, alert_rate=alert_rate))
        model.fit(feature_matrix(train))
        scores = model.score(feature_matrix(week))
        flags = model.flag(scores)
        truth_all.append(week["txn_id"].isin(labels).to_numpy())
        scores_all.append(scores)
        flags_all.append(flags)
        rates.append(float(flags.mean()) if len(flags) else 0.0)
    truth = np.concatenate(truth_all)
    scores = np.concatenate(scores_all)
    flags = np.concatenate(flags_all)
    k = int(truth.sum())
    top = np.argsort(-scores, kind="stable")[:k]
    return {
        "n": float(len(truth)),
        "k": float(k),
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
        "precision_at_k": float(truth[top].mean()),
        "precision_at_threshold": float(truth[flags].mean()) if flags.any() else float("nan"),
        "recall_at_threshold": float(flags[truth].mean()) if k else float("nan"),
        "alert_rate_min": min(rates),
        "alert_rate_median": statistics.median(rates),
        "alert_rate_max": max(rates),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, action="append", required=True)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    parser.add_argument("--kinds", default=f"{SERVED},{BASELINE}")
    args = parser.parse_args()

    from smepulse.ml.features import build_features
    from smepulse.settings import Settings

    alert_rate = Settings().ml_anomaly_alert_rate
    columns = [
        ("roc_auc", "ROC-AUC"),
        ("average_precision", "AP"),
        ("precision_at_k", "P@k"),
        ("precision_at_threshold", "prec@thr"),
        ("recall_at_threshold", "rec@thr"),
        ("alert_rate_min", "alerts/wk min"),
        ("alert_rate_median", "median"),
        ("alert_rate_max", "max"),
    ]
    print(
        f"UC10 walk-forward, {args.weeks} weekly refits; served threshold: score level "
        f"reached by {100 * alert_rate:.1f} % of training transactions"
    )
    header = f"{'business':<22} {'detector':<17}" + "".join(f"{t:>14}" for _, t in columns)
    print(header)
    for home in args.home:
        frame, labels = load_business(home.resolve())
        local = pd.to_datetime(frame["txn_at"]).dt.tz_localize("UTC").dt.tz_convert(args.timezone)
        end = args.end_date or local.max().date()
        features = build_features(frame, args.timezone, cutoff=end)
        results = {}
        for kind in args.kinds.split(","):
            results[kind] = walk_forward(features, labels, kind, end, args.weeks, alert_rate)
            r = results[kind]
            print(f"{home.name:<22} {kind:<17}" + "".join(f"{r[key]:>14.3f}" for key, _ in columns))
        n, k = results[next(iter(results))]["n"], results[next(iter(results))]["k"]
        extra = ""
        if SERVED in results and BASELINE in results:
            ratio = results[SERVED]["average_precision"] / results[BASELINE]["average_precision"]
            extra = f"; served AP / baseline AP = {ratio:.2f}"
        print(f"{'':<22} ({int(n):,} transactions in the weeks, {int(k)} labelled{extra})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
