"""Stage ``uc09-train``: backtest the UC09 candidates, fit the best one, register it.

Candidates are ``settings.ml_forecast_candidates`` (Prophet and AutoETS by default), each in
both targets — net cash flow directly, and inflow and outflow separately — so the net-vs-split
choice is made by the same rolling-origin backtest as the model choice. The weekly seasonal
naive is always backtested too: it is the baseline ``validate-models`` requires a model to
beat. The winner (lowest MASE) is fitted on all days up to the logical date and registered as
a new version of ``smepulse-uc09-cashflow``; promotion to ``champion`` is validate-models' job.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.backtest import ForecastScore, backtest_cashflow
from smepulse.ml.cashflow import CashflowModel, CashflowSpec
from smepulse.ml.data import load_daily_cashflow
from smepulse.ml.pyfunc import CashflowPyfunc
from smepulse.settings import Settings

log = logging.getLogger(__name__)
BASELINE = "seasonal_naive"
TARGETS: tuple[Literal["net", "split"], ...] = ("net", "split")


def candidate_specs(settings: Settings) -> list[CashflowSpec]:
    """Every candidate kind in both targets (the baseline is not a candidate)."""
    kinds = [k for k in settings.ml_forecast_candidates if k != BASELINE]
    if not kinds:
        raise StageError(
            "SMEPULSE_ML_FORECAST_CANDIDATES names no model besides the seasonal naive baseline"
        )
    try:
        return [
            CashflowSpec(kind=k, target=t, level=settings.ml_forecast_interval)
            for k in kinds
            for t in TARGETS
        ]
    except ValueError as exc:
        raise StageError(f"SMEPULSE_ML_FORECAST_CANDIDATES: {exc}") from None


def compare(
    daily: pd.DataFrame, specs: list[CashflowSpec], horizon: int, folds: int
) -> tuple[dict[str, ForecastScore], dict[str, float]]:
    """Backtest every spec (and the baseline) on the same folds; scores and seconds by label."""
    baseline = CashflowSpec(kind=BASELINE, target="net", level=specs[0].level)
    scores: dict[str, ForecastScore] = {}
    seconds: dict[str, float] = {}
    for spec in [baseline, *specs]:
        start = time.perf_counter()
        scores[spec.label] = backtest_cashflow(daily, spec, horizon, folds)
        seconds[spec.label] = time.perf_counter() - start
        log.info(
            "UC09 backtest %-22s MASE %.3f  RMSSE %.3f  sMAPE %.3f  coverage %.2f  (%.1fs)",
            spec.label,
            scores[spec.label].mase,
            scores[spec.label].rmsse,
            scores[spec.label].smape,
            scores[spec.label].coverage,
            seconds[spec.label],
        )
    return scores, seconds


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    end = settings.business_date
    horizon, folds = settings.ml_forecast_horizon_days, settings.ml_backtest_folds
    daily = load_daily_cashflow(settings, end)
    specs = candidate_specs(settings)
    try:
        scores, seconds = compare(daily, specs, horizon, folds)
    except ValueError as exc:
        raise StageError(f"UC09 backtest: {exc}") from None
    best = min(specs, key=lambda s: scores[s.label].mase)
    baseline = scores[f"{BASELINE}/net"]

    start = time.perf_counter()
    model = CashflowModel(best).fit(daily)
    fit_seconds = time.perf_counter() - start
    example = model.predict(horizon)
    example["forecast_date"] = pd.to_datetime(example["forecast_date"])
    sizes: dict[str, float] = {}

    def save(path: Path) -> None:
        model.save(path)
        sizes["artifact_mb"] = _folder_mb(path)

    data_start, data_end = str(daily["cash_date"].iloc[0]), str(daily["cash_date"].iloc[-1])
    metrics = {
        **scores[best.label].metrics(),
        **baseline.metrics("baseline_"),
        "relative_mase": scores[best.label].mase / baseline.mase,
        "fit_seconds": fit_seconds,
        "n_days": float(len(daily)),
        **{f"backtest_seconds.{label.replace('/', '_')}": s for label, s in seconds.items()},
        **{
            f"cand.{label.replace('/', '_')}.{k}": v
            for label, sc in scores.items()
            for k, v in sc.metrics().items()
        },
    }
    document = {
        "chosen": best.label,
        "horizon_days": horizon,
        "folds": folds,
        "candidates": {label: asdict(score) for label, score in scores.items()},
    }
    version = registry.log_and_register(
        settings,
        model_name=registry.UC09_MODEL,
        use_case="uc09",
        python_model=CashflowPyfunc(),
        save=save,
        input_example=pd.DataFrame({"horizon": [horizon]}),
        output_example=example,
        params={**best.as_dict(), "horizon_days": horizon, "backtest_folds": folds},
        metrics=metrics,
        tags={
            "logical_date": end.isoformat(),
            "data_start": data_start,
            "data_end": data_end,
            "spec": json.dumps(best.as_dict()),
            "model_kind": best.label,
        },
        documents={"backtest.json": document},
    )
    with registry.tracking(settings) as client:
        client.log_metric(version.run_id, "artifact_mb", sizes.get("artifact_mb", float("nan")))
    log.info(
        "UC09: registered %s v%s (%s, MASE %.3f vs seasonal naive %.3f; data %s..%s)",
        registry.UC09_MODEL,
        version.version,
        best.label,
        scores[best.label].mase,
        baseline.mase,
        data_start,
        data_end,
    )
