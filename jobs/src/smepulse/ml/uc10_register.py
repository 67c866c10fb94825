"""Fit one UC10 :class:`AnomalyModel` and register it (shared by ``uc10-train`` and, for the
first-run baseline, ``uc10-detect``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from smepulse.ml import registry
from smepulse.ml.pyfunc import AnomalyPyfunc
from smepulse.ml.uc10_models import AnomalyModel, AnomalySpec
from smepulse.settings import Settings

log = logging.getLogger(__name__)


def register_anomaly_model(
    settings: Settings,
    model_name: str,
    spec: AnomalySpec,
    matrix: pd.DataFrame,
    metrics: dict[str, float],
    tags: dict[str, str],
    documents: dict[str, object],
) -> tuple[AnomalyModel, registry.RegisteredVersion]:
    """Fit ``spec`` on ``matrix`` (feature columns) and register it as a new version."""
    start = time.perf_counter()
    model = AnomalyModel(spec).fit(matrix)
    metrics = {
        **metrics,
        "fit_seconds": time.perf_counter() - start,
        "threshold": float(model.threshold or 0.0),
    }
    example = matrix.head(5)
    example_out = pd.DataFrame(
        {"anomaly_score": model.score(example), "is_alert": model.flag(model.score(example))}
    )
    sizes: dict[str, float] = {}

    def save(path: Path) -> None:
        model.save(path)
        sizes["artifact_mb"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6

    version = registry.log_and_register(
        settings,
        model_name=model_name,
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
        tags={**tags, "spec": json.dumps(spec.as_dict()), "model_kind": spec.kind},
        documents=documents,
    )
    with registry.tracking(settings) as client:
        client.log_metric(version.run_id, "artifact_mb", sizes.get("artifact_mb", float("nan")))
    log.info(
        "UC10: registered %s v%s (%s; threshold %.4f = the score of the top %.1f%% of training)",
        model_name,
        version.version,
        spec.kind,
        model.threshold or 0.0,
        100 * spec.alert_rate,
    )
    return model, version
