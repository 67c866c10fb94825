"""Honest evaluation for UC09 and UC10.

UC09 — rolling-origin backtest: ``folds`` consecutive cut-offs, one horizon apart, ending one
horizon before the last day. At each cut-off the model is fitted on the days up to it and
forecasts the next ``horizon`` days. Per fold:

* MASE  = MAE / mean |y_t − y_{t−7}| over the fold's training days (the in-sample error of the
  weekly seasonal naive), so < 1 beats a one-step seasonal naive on average;
* RMSSE = sqrt(MSE / mean (y_t − y_{t−7})²), the squared-error analogue;
* sMAPE = mean 2|e| / (|y| + |ŷ|) (0 when both are 0) — reported because it is asked for, but
  on a net series that crosses zero it is dominated by near-zero days: rank models by MASE;
* coverage = share of actual days inside the prediction interval (compare with its level).

Figures are means over folds. UC10 — fit the detector on the transactions before an evaluation
window, score the window, and compare with the planted labels: ROC-AUC, average precision,
precision@k with k the number of labelled anomalies in the window, and the alert rate and
recall at the model's own threshold.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from smepulse.ml.cashflow import CashflowModel, CashflowSpec
from smepulse.ml.features import feature_matrix
from smepulse.ml.protocol import BoolArray, FloatArray
from smepulse.ml.uc09_models import SEASON
from smepulse.ml.uc10_models import AnomalyModel, AnomalySpec

log = logging.getLogger(__name__)
MIN_TRAIN_DAYS = 90


def seasonal_scale(train: FloatArray, squared: bool = False) -> float:
    """Mean (absolute or squared) lag-7 difference of the training series; 1.0 if it is 0."""
    diffs = train[SEASON:] - train[:-SEASON]
    value = float(np.mean(diffs**2) if squared else np.mean(np.abs(diffs)))
    return value if value > 0 else 1.0


def mase(actual: FloatArray, forecast: FloatArray, train: FloatArray) -> float:
    return float(np.mean(np.abs(actual - forecast)) / seasonal_scale(train))


def rmsse(actual: FloatArray, forecast: FloatArray, train: FloatArray) -> float:
    return float(np.sqrt(np.mean((actual - forecast) ** 2) / seasonal_scale(train, squared=True)))


def smape(actual: FloatArray, forecast: FloatArray) -> float:
    denom = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(
        2 * np.abs(actual - forecast), denom, out=np.zeros_like(denom), where=denom > 0
    )
    return float(np.mean(ratio))


def coverage(actual: FloatArray, lower: FloatArray, upper: FloatArray) -> float:
    return float(np.mean((actual >= lower) & (actual <= upper)))


@dataclass
class ForecastScore:
    """Backtest figures of one UC09 spec (means over folds, and per fold)."""

    label: str
    mase: float
    rmsse: float
    smape: float
    coverage: float
    folds: list[dict[str, float | str]] = field(default_factory=list)

    def metrics(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}{name}": float(getattr(self, name))
            for name in ("mase", "rmsse", "smape", "coverage")
        }


def fold_cutoffs(
    n_days: int, horizon: int, folds: int, min_train: int = MIN_TRAIN_DAYS
) -> list[int]:
    """Training lengths of the folds (oldest first); fewer folds when history is short.

    ValueError when not even one fold fits.
    """
    lengths = [n_days - horizon * i for i in range(folds, 0, -1)]
    usable = [n for n in lengths if n >= min_train]
    if not usable:
        raise ValueError(
            f"a backtest needs at least {min_train + horizon} days of daily cash flow, "
            f"the training set has {n_days}"
        )
    if len(usable) < folds:
        log.warning(
            "only %d of %d backtest folds fit in %d days of history", len(usable), folds, n_days
        )
    return usable


def backtest_cashflow(
    daily: pd.DataFrame, spec: CashflowSpec, horizon: int, folds: int
) -> ForecastScore:
    """Rolling-origin backtest of ``spec`` on the silver daily cash-flow frame (net is scored)."""
    net = daily["net_vnd"].to_numpy(dtype=float)
    rows: list[dict[str, float | str]] = []
    for n_train in fold_cutoffs(len(daily), horizon, folds):
        train, actual = net[:n_train], net[n_train : n_train + horizon]
        forecast = CashflowModel(spec).fit(daily.iloc[:n_train]).predict(horizon)
        yhat = forecast["yhat"].to_numpy(dtype=float)
        rows.append(
            {
                "cutoff": str(daily["cash_date"].iloc[n_train - 1]),
                "mase": mase(actual, yhat, train),
                "rmsse": rmsse(actual, yhat, train),
                "smape": smape(actual, yhat),
                "coverage": coverage(
                    actual,
                    forecast["yhat_lower"].to_numpy(dtype=float),
                    forecast["yhat_upper"].to_numpy(dtype=float),
                ),
            }
        )
    means = {
        m: float(np.mean([float(r[m]) for r in rows]))
        for m in ("mase", "rmsse", "smape", "coverage")
    }
    return ForecastScore(label=spec.label, folds=rows, **means)


@dataclass
class DetectionScore:
    """UC10 figures of one detector on one evaluation window (at its served threshold)."""

    label: str
    window_start: str
    window_end: str
    n_transactions: int
    k: int
    roc_auc: float
    average_precision: float
    precision_at_k: float
    alert_rate: float
    max_weekly_alert_rate: float
    precision_at_threshold: float
    recall_at_threshold: float
    threshold: float

    def metrics(self, prefix: str = "") -> dict[str, float]:
        skip = {"label", "window_start", "window_end"}
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items() if k not in skip}


@dataclass
class Holdout:
    """A detector fitted on the transactions before a window and the window's scores."""

    window: pd.DataFrame
    scores: FloatArray
    model: AnomalyModel


def holdout(
    features: pd.DataFrame, spec: AnomalySpec, window_start: dt.date, window_end: dt.date
) -> Holdout:
    """Fit ``spec`` on transactions before ``window_start``; score [window_start, window_end]."""
    day = features["local_at"].dt.date
    train = features[day < window_start]
    window = features[(day >= window_start) & (day <= window_end)].reset_index(drop=True)
    if len(train) < 100 or window.empty:
        raise ValueError(
            f"UC10 evaluation needs transactions before {window_start} (got {len(train)}) "
            f"and inside {window_start}..{window_end} (got {len(window)})"
        )
    model = AnomalyModel(spec).fit(feature_matrix(train))
    return Holdout(window, model.score(feature_matrix(window)), model)


def weekly_alert_rates(local_at: pd.Series, flags: BoolArray, window_end: dt.date) -> list[float]:
    """Alert rate of each 7-day block counted back from ``window_end`` (empty blocks skipped)."""
    age = np.asarray([(window_end - d).days // 7 for d in local_at.dt.date], dtype=int)
    return [float(flags[age == block].mean()) for block in sorted(set(age.tolist()))]


def top_agreement(a: FloatArray, b: FloatArray, k: int) -> float:
    """Share of ``a``'s top ``k`` rows that are also among ``b``'s top ``k`` (0..1)."""
    if k <= 0 or len(a) == 0:
        return float("nan")
    k = min(k, len(a))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def score_holdout(
    fitted: Holdout, anomaly_ids: set[str], label: str, scope: set[str] | None = None
) -> DetectionScore:
    """The figures of a holdout against labels (ranking figures NaN without a labelled row).

    ``scope``: when only some rows carry a label (users' verdicts), the ranking and threshold
    figures are computed over those rows only; None means every row is labelled (planted).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    window, model = fitted.window, fitted.model
    flags_all = model.flag(fitted.scores)
    ids = window["txn_id"].astype(str)
    inside = np.ones(len(window), bool) if scope is None else ids.isin(scope).to_numpy()
    scores, flags = fitted.scores[inside], flags_all[inside]
    truth = ids[inside].isin(anomaly_ids).to_numpy()
    k = int(truth.sum())
    nan = float("nan")
    if 0 < k < len(truth):
        top = np.argsort(-scores, kind="stable")[:k]
        roc, ap, pak = (
            roc_auc_score(truth, scores),
            average_precision_score(truth, scores),
            truth[top].mean(),
        )
    else:
        roc = ap = pak = nan
    end = max(window["local_at"].dt.date)
    return DetectionScore(
        label=label,
        window_start=str(min(window["local_at"].dt.date)),
        window_end=str(end),
        n_transactions=len(window),
        k=k,
        roc_auc=float(roc),
        average_precision=float(ap),
        precision_at_k=float(pak),
        alert_rate=float(flags_all.mean()),
        max_weekly_alert_rate=max(weekly_alert_rates(window["local_at"], flags_all, end)),
        precision_at_threshold=float(truth[flags].mean()) if k and flags.any() else nan,
        recall_at_threshold=float(flags[truth].mean()) if k else nan,
        threshold=float(model.threshold or 0.0),
    )


def evaluate_detector(
    features: pd.DataFrame,
    anomaly_ids: set[str],
    spec: AnomalySpec,
    window_start: dt.date,
    window_end: dt.date,
) -> DetectionScore:
    """Fit ``spec`` on transactions before ``window_start``; score [window_start, window_end].

    ``features`` comes from :func:`~smepulse.ml.features.build_features`; dates are local
    business dates. With no labelled anomaly in the window the ranking figures are NaN.
    """
    return score_holdout(holdout(features, spec, window_start, window_end), anomaly_ids, spec.kind)
