"""Stage ``uc10-detect``: score the last days' bank transactions into ``gold.ml_anomaly_alerts``.

The window is the ``ml_anomaly_window_days`` local business days up to the logical date. Each
transaction's features use only what came before it (the whole history is read for that). A
transaction is an alert when its score reaches the champion's training threshold; so that a
bookkeeper's queue stays predictable, the number of alerts is then held within ±25 % of the
target rate (3–5 % for the default 4 %): the highest scores are added when too few pass the
threshold, the lowest dropped when too many do. Each alert carries its reasons in plain words.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import numpy as np
import pandas as pd

from smepulse.errors import StageSkipped
from smepulse.ml import registry
from smepulse.ml.data import load_transactions
from smepulse.ml.features import build_features, explain, feature_matrix
from smepulse.ml.protocol import FloatArray
from smepulse.ml.uc10_models import ALERT_RATE_TOLERANCE
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)
TABLE = "ml_anomaly_alerts"


def alert_count(scores: FloatArray, threshold: float, rate: float) -> int:
    """How many of the top scores become alerts: those at or above ``threshold``, held within
    ``rate`` ± 25 % of the window size (at least one alert when the window is not empty)."""
    n = len(scores)
    if n == 0:
        return 0
    low = max(1, math.ceil(n * rate * (1 - ALERT_RATE_TOLERANCE)))
    high = max(low, math.floor(n * rate * (1 + ALERT_RATE_TOLERANCE)))
    return int(min(max(int((scores >= threshold).sum()), low), high))


def alerts_frame(
    window: pd.DataFrame,
    scores: FloatArray,
    count: int,
    *,
    version: registry.RegisteredVersion,
    logical_date: dt.date,
) -> pd.DataFrame:
    """The top ``count`` transactions of ``window`` (features frame) by score, with reasons."""
    order = np.argsort(-scores, kind="stable")[:count]
    top = window.iloc[order].reset_index(drop=True)
    return pd.DataFrame(
        {
            "txn_id": top["txn_id"].astype(str),
            "txn_at": pd.to_datetime(top["txn_at"]).to_numpy(),
            "amount_vnd": top["amount_vnd"].round().astype("Int64"),
            "counterparty": top["counterparty"].astype(str),
            "category": top["category"].astype(str),
            "anomaly_score": scores[order].astype(float),
            "anomaly_rank": np.arange(1, count + 1, dtype="int32"),
            "reasons": [explain(row) for _, row in top.iterrows()],
            "model_name": version.name,
            "model_version": version.version,
            "logical_date": logical_date,
            "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"),
        }
    )


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    logical = settings.business_date
    wrapper, version = registry.load_champion(settings, registry.UC10_MODEL)
    model = wrapper.model
    features = build_features(
        load_transactions(settings, logical), settings.timezone, cutoff=logical
    )
    start = logical - dt.timedelta(days=settings.ml_anomaly_window_days - 1)
    window = features[features["local_at"].dt.date >= start].reset_index(drop=True)
    if window.empty:
        raise StageSkipped(f"no bank transactions between {start} and {logical}: nothing to score")
    scores = model.score(feature_matrix(window))
    threshold = float(model.threshold)
    count = alert_count(scores, threshold, model.spec.alert_rate)
    passing = int((scores >= threshold).sum())
    if count != passing:
        log.info(
            "UC10: %d of %d transactions pass the threshold %.4f; held to %d (%.1f%%)",
            passing,
            len(window),
            threshold,
            count,
            100 * count / len(window),
        )
    rows = alerts_frame(window, scores, count, version=version, logical_date=logical)
    get_warehouse(settings).replace_table(settings.gold_schema, TABLE, rows)
    log.info(
        "UC10: wrote %d alerts (%.1f%% of %d transactions %s..%s) to %s.%s (champion v%s)",
        len(rows),
        100 * len(rows) / len(window),
        len(window),
        start,
        logical,
        settings.gold_schema,
        TABLE,
        version.version,
    )
