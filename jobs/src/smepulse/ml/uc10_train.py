"""Stage ``uc10-train``: evaluate the served detector and the baseline, register both.

Evaluation on a held-out window (the last ``ml_anomaly_eval_days`` days up to the logical date):
the candidate (the ensemble) and the robust z-score baseline are fitted on the transactions
before the window and score it, each at its own served threshold. With labels — the
generator's planted anomalies and/or the verdicts users recorded with ``smepulse alerts
review`` (:mod:`smepulse.ml.uc10_feedback`) — this gives ROC-AUC, average precision, precision@k and
precision/recall at the threshold; verdict-only labels are scored over the reviewed rows only.
Without labels it still gives what promotion needs: the candidate's weekly alert rates on the
window and how far its top alerts agree with the baseline's.

Then both are fitted on all transactions up to the logical date and registered: the candidate
as a new version of ``smepulse-uc10-anomaly`` (``validate-models`` decides on promotion), the
baseline as a new version of ``smepulse-uc10-baseline`` (what ``uc10-detect`` serves while no
champion exists).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.backtest import DetectionScore, holdout, score_holdout, top_agreement
from smepulse.ml.data import load_transactions
from smepulse.ml.features import build_features, feature_matrix
from smepulse.ml.uc10_feedback import Labels, load_labels
from smepulse.ml.uc10_models import AnomalySpec
from smepulse.ml.uc10_register import register_anomaly_model
from smepulse.settings import Settings

log = logging.getLogger(__name__)
CANDIDATE = "ensemble"
BASELINE = "robust_z"


def eval_window(settings: Settings, end: dt.date) -> tuple[dt.date, dt.date]:
    return end - dt.timedelta(days=settings.ml_anomaly_eval_days - 1), end


def evaluate(
    features: pd.DataFrame, labels: Labels, settings: Settings, end: dt.date
) -> tuple[dict[str, DetectionScore], float]:
    """Candidate and baseline on the same held-out window, and their top-k agreement."""
    start, stop = eval_window(settings, end)
    out: dict[str, DetectionScore] = {}
    scores = {}
    for kind in (CANDIDATE, BASELINE):
        spec = AnomalySpec(kind=kind, alert_rate=settings.ml_anomaly_alert_rate)
        try:
            fitted = holdout(features, spec, start, stop)
        except ValueError as exc:
            raise StageError(f"UC10 evaluation: {exc}") from None
        scores[kind] = fitted.scores
        out[kind] = score_holdout(fitted, labels.positives, kind, scope=labels.reviewed)
        s = out[kind]
        log.info(
            "UC10 eval %-10s ROC-AUC %.3f  AP %.3f  P@k %.3f (k=%d of %d)  alert rate %.3f "
            "(max weekly %.3f)",
            kind,
            s.roc_auc,
            s.average_precision,
            s.precision_at_k,
            s.k,
            s.n_transactions,
            s.alert_rate,
            s.max_weekly_alert_rate,
        )
    k = max(1, math.ceil(settings.ml_anomaly_alert_rate * len(scores[CANDIDATE])))
    agreement = top_agreement(scores[CANDIDATE], scores[BASELINE], k)
    log.info("UC10 eval: %.0f %% of the top %d alerts agree with the baseline", 100 * agreement, k)
    return out, agreement


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    end = settings.business_date
    transactions = load_transactions(settings, end)
    features = build_features(transactions, settings.timezone, cutoff=end)
    labels = load_labels(settings, end)
    scores, agreement = evaluate(features, labels, settings, end)
    matrix = feature_matrix(features)
    day = features["local_at"].dt.date
    eval_start, eval_end = eval_window(settings, end)
    tags = {
        "logical_date": end.isoformat(),
        "data_start": str(day.min()),
        "data_end": str(day.max()),
        "eval_window": f"{eval_start}..{eval_end}",
        "has_labels": str(labels.usable).lower(),
        "label_source": labels.source,
    }
    documents: dict[str, object] = {
        "evaluation.json": {
            **{k: asdict(v) for k, v in scores.items()},
            "top_agreement": agreement,
            "labels": labels.summary(),
        }
    }
    common = {"top_agreement": agreement, "n_transactions": float(len(features))}
    register_anomaly_model(
        settings,
        registry.UC10_BASELINE_MODEL,
        AnomalySpec(kind=BASELINE, alert_rate=settings.ml_anomaly_alert_rate),
        matrix,
        {**scores[BASELINE].metrics(), **common},
        tags,
        documents,
    )
    register_anomaly_model(
        settings,
        registry.UC10_MODEL,
        AnomalySpec(kind=CANDIDATE, alert_rate=settings.ml_anomaly_alert_rate),
        matrix,
        {**scores[CANDIDATE].metrics(), **scores[BASELINE].metrics("baseline_"), **common},
        tags,
        documents,
    )
