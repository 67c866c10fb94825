"""Stage ``uc10-train``: evaluate the detectors, fit IsolationForest, register it.

Evaluation: both detectors (IsolationForest and the robust z-score baseline) are fitted on the
transactions before a held-out window (the last ``ml_anomaly_eval_days`` days up to the logical
date) and scored on it; with the generator's planted labels this gives ROC-AUC, average
precision and precision@k. Then IsolationForest is fitted on all transactions up to the logical
date; its alert threshold is the training-score quantile that flags ``ml_anomaly_alert_rate``
of them. The model is registered as a new version of ``smepulse-uc10-anomaly``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.backtest import DetectionScore, evaluate_detector
from smepulse.ml.data import load_anomaly_labels, load_transactions
from smepulse.ml.features import build_features, feature_matrix
from smepulse.ml.pyfunc import AnomalyPyfunc
from smepulse.ml.uc10_models import AnomalyModel, AnomalySpec
from smepulse.settings import Settings

log = logging.getLogger(__name__)
CANDIDATE = "isolation_forest"
BASELINE = "robust_z"


def eval_window(settings: Settings, end: dt.date) -> tuple[dt.date, dt.date]:
    return end - dt.timedelta(days=settings.ml_anomaly_eval_days - 1), end


def evaluate(
    features: pd.DataFrame, labels: set[str] | None, settings: Settings, end: dt.date
) -> dict[str, DetectionScore]:
    """Candidate and baseline on the same held-out window (ranking figures NaN without labels)."""
    start, stop = eval_window(settings, end)
    out: dict[str, DetectionScore] = {}
    for kind in (CANDIDATE, BASELINE):
        spec = AnomalySpec(kind=kind, alert_rate=settings.ml_anomaly_alert_rate)
        try:
            out[kind] = evaluate_detector(features, labels or set(), spec, start, stop)
        except ValueError as exc:
            raise StageError(f"UC10 evaluation: {exc}") from None
        s = out[kind]
        log.info(
            "UC10 eval %-16s ROC-AUC %.3f  AP %.3f  P@k %.3f (k=%d of %d)  alert rate %.3f",
            kind,
            s.roc_auc,
            s.average_precision,
            s.precision_at_k,
            s.k,
            s.n_transactions,
            s.alert_rate,
        )
    return out


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    end = settings.business_date
    transactions = load_transactions(settings, end)
    features = build_features(transactions, settings.timezone, cutoff=end)
    labels = load_anomaly_labels(settings)
    scores = evaluate(features, labels, settings, end)

    spec = AnomalySpec(kind=CANDIDATE, alert_rate=settings.ml_anomaly_alert_rate)
    matrix = feature_matrix(features)
    start = time.perf_counter()
    model = AnomalyModel(spec).fit(matrix)
    fit_seconds = time.perf_counter() - start
    example = matrix.head(5)
    example_out = pd.DataFrame(
        {"anomaly_score": model.score(example), "is_alert": model.flag(model.score(example))}
    )
    sizes: dict[str, float] = {}

    def save(path: Path) -> None:
        model.save(path)
        sizes["artifact_mb"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6

    day = features["local_at"].dt.date
    window_start = end - dt.timedelta(days=settings.ml_anomaly_window_days - 1)
    recent = matrix[(day >= window_start).to_numpy()]
    recent_rate = float(model.flag(model.score(recent)).mean()) if len(recent) else float("nan")
    metrics = {
        **scores[CANDIDATE].metrics(),
        **scores[BASELINE].metrics("baseline_"),
        "threshold": float(model.threshold or 0.0),
        "recent_alert_rate": recent_rate,
        "fit_seconds": fit_seconds,
        "n_transactions": float(len(features)),
    }
    eval_start, eval_end = eval_window(settings, end)
    version = registry.log_and_register(
        settings,
        model_name=registry.UC10_MODEL,
        use_case="uc10",
        python_model=AnomalyPyfunc(),
        save=save,
        input_example=example,
        output_example=example_out,
        params={
            **spec.as_dict(),
            "eval_days": settings.ml_anomaly_eval_days,
            "window_days": settings.ml_anomaly_window_days,
        },
        metrics=metrics,
        tags={
            "logical_date": end.isoformat(),
            "data_start": str(day.min()),
            "data_end": str(day.max()),
            "eval_window": f"{eval_start}..{eval_end}",
            "has_labels": str(labels is not None).lower(),
            "spec": json.dumps(spec.as_dict()),
            "model_kind": spec.kind,
        },
        documents={"evaluation.json": {k: asdict(v) for k, v in scores.items()}},
    )
    with registry.tracking(settings) as client:
        client.log_metric(version.run_id, "artifact_mb", sizes.get("artifact_mb", float("nan")))
    log.info(
        "UC10: registered %s v%s (threshold %.4f flags %.1f%% of training, %.1f%% of the last %d days)",
        registry.UC10_MODEL,
        version.version,
        model.threshold or 0.0,
        100 * spec.alert_rate,
        100 * recent_rate,
        settings.ml_anomaly_window_days,
    )
