"""Stage ``uc10-detect``: score the last days' bank transactions into ``gold.ml_anomaly_alerts``.

The window is the ``ml_anomaly_window_days`` local business days up to the logical date. Each
transaction's features use only what came before it (the whole history is read for that). A
transaction is an alert when its score reaches the serving model's threshold — a score level
fixed at training, with no quota: a quiet week may have few alerts or none.

Which model serves (every alert row names it, with its version and kind):

* the UC10 champion, unless it was trained after the logical date — then the stage refuses
  (its features' profiles would have seen the future): run ml-training for that date first;
* with no champion, the robust z-score baseline (``smepulse-uc10-baseline``): the newest version
  trained on or before the logical date; if there is none yet (a first run, before any
  ml-training), it is fitted on the history before the window and registered first. So the
  stage never fails only because nothing was promoted.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from smepulse.errors import StageError, StageSkipped
from smepulse.ml import registry
from smepulse.ml.data import load_transactions
from smepulse.ml.features import build_features, explain, feature_matrix
from smepulse.ml.protocol import FloatArray
from smepulse.ml.uc10_models import AnomalyModel, AnomalySpec
from smepulse.ml.uc10_register import register_anomaly_model
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)
TABLE = "ml_anomaly_alerts"
BASELINE_KIND = "robust_z"


def alerts_frame(
    window: pd.DataFrame,
    scores: FloatArray,
    threshold: float,
    *,
    version: registry.RegisteredVersion,
    kind: str,
    logical_date: dt.date,
) -> pd.DataFrame:
    """The transactions of ``window`` (features frame) scoring at or above ``threshold``,
    highest first, with their reasons and the model that raised them."""
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= threshold]
    top = window.iloc[order].reset_index(drop=True)
    return pd.DataFrame(
        {
            "txn_id": top["txn_id"].astype(str),
            "txn_at": pd.to_datetime(top["txn_at"]).to_numpy(),
            "amount_vnd": top["amount_vnd"].round().astype("Int64"),
            "counterparty": top["counterparty"].astype(str),
            "category": top["category"].astype(str),
            "anomaly_score": scores[order].astype(float),
            "anomaly_rank": np.arange(1, len(order) + 1, dtype="int32"),
            "reasons": [explain(row) for _, row in top.iterrows()],
            "model_name": version.name,
            "model_version": version.version,
            "model_kind": kind,
            "logical_date": logical_date,
            "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"),
        }
    )


def serving_model(
    settings: Settings, features: pd.DataFrame, window_start: dt.date
) -> tuple[AnomalyModel, registry.RegisteredVersion, str]:
    """The model to serve for the logical date, its version and its role (module docstring)."""
    logical = settings.business_date
    with registry.tracking(settings) as client:
        current = registry.champion(client, registry.UC10_MODEL)
        if current is not None:
            if current.logical_date > logical.isoformat():
                raise StageError(
                    f"the UC10 champion ({registry.UC10_MODEL} v{current.version}) was trained "
                    f"as of {current.logical_date}, after the logical date {logical}: its alerts "
                    f"would not be the ones raised on {logical}; run ml-training for {logical} "
                    "first or detect a later date"
                )
            return registry.load_version(client, current).model, current, "champion"
        baseline = registry.latest_as_of(client, registry.UC10_BASELINE_MODEL, logical)
        if baseline is not None:
            return registry.load_version(client, baseline).model, baseline, "baseline"
    history = features[features["local_at"].dt.date < window_start]
    if len(history) < 100:
        raise StageError(
            f"UC10 has no champion and too little history before {window_start} to fit the "
            f"baseline ({len(history)} transactions, needs 100)"
        )
    log.info("UC10: no champion and no baseline yet: fitting and registering the baseline")
    model, version = register_anomaly_model(
        settings,
        registry.UC10_BASELINE_MODEL,
        AnomalySpec(kind=BASELINE_KIND, alert_rate=settings.ml_anomaly_alert_rate),
        feature_matrix(history),
        {"n_transactions": float(len(history))},
        {
            "logical_date": logical.isoformat(),
            "data_start": str(history["local_at"].dt.date.min()),
            "data_end": str(history["local_at"].dt.date.max()),
            "registered_by": "uc10-detect",
        },
        {},
    )
    return model, version, "baseline"


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    logical = settings.business_date
    features = build_features(
        load_transactions(settings, logical), settings.timezone, cutoff=logical
    )
    start = logical - dt.timedelta(days=settings.ml_anomaly_window_days - 1)
    window = features[features["local_at"].dt.date >= start].reset_index(drop=True)
    if window.empty:
        raise StageSkipped(f"no bank transactions between {start} and {logical}: nothing to score")
    model, version, role = serving_model(settings, features, start)
    scores = model.score(feature_matrix(window))
    threshold = float(model.threshold or 0.0)
    rows = alerts_frame(
        window, scores, threshold, version=version, kind=model.spec.kind, logical_date=logical
    )
    get_warehouse(settings).replace_table(settings.gold_schema, TABLE, rows)
    log.info(
        "UC10: wrote %d alerts (%.1f%% of %d transactions %s..%s, threshold %.4f) to %s.%s "
        "(%s %s v%s)",
        len(rows),
        100 * len(rows) / len(window),
        len(window),
        start,
        logical,
        threshold,
        settings.gold_schema,
        TABLE,
        role,
        version.name,
        version.version,
    )
