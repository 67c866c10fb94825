"""Stage ``uc09-train``: backtest the UC09 candidates, fit the chosen one, register it.

Candidates are ``settings.ml_forecast_candidates`` (the book-based model, Prophet and AutoETS
by default); Prophet and AutoETS each in both targets (net directly, inflow and outflow
separately). The weekly seasonal naive is always backtested too: it is the baseline
``validate-models`` requires a model to beat. The backtest is nested
(:mod:`smepulse.ml.uc09_nested`): the figure logged as ``mase``/``coverage`` is that of the
selection procedure on folds it did not choose on, not the best candidate's. The choice at the
logical date is fitted on all days up to it and registered as a new version of
``smepulse-uc09-cashflow``; promotion to ``champion`` is validate-models' job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.cashflow import CashflowModel, CashflowSpec
from smepulse.ml.data import load_daily_cashflow
from smepulse.ml.pyfunc import CashflowPyfunc
from smepulse.ml.uc09_book import BookConfig, BookModel
from smepulse.ml.uc09_book_data import BookData, day_number, load_book
from smepulse.ml.uc09_nested import FitPredict, nested_backtest
from smepulse.ml.uc09_pyfunc import BookPyfunc
from smepulse.settings import Settings

log = logging.getLogger(__name__)
BASELINE = "seasonal_naive"
BOOK = "book"
TARGETS: tuple[Literal["net", "split"], ...] = ("net", "split")


def candidate_specs(settings: Settings) -> list[CashflowSpec]:
    """Every candidate kind in both targets (the baseline is not a candidate)."""
    kinds = [k for k in settings.ml_forecast_candidates if k not in (BASELINE, BOOK)]
    if not kinds and BOOK not in settings.ml_forecast_candidates:
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


def candidate_forecasters(
    settings: Settings, daily: pd.DataFrame, specs: list[CashflowSpec], book: BookData | None
) -> dict[str, FitPredict]:
    """Fit-and-forecast closures for the nested backtest: the baseline, each spec, the book."""
    horizon = settings.ml_forecast_horizon_days
    baseline = CashflowSpec(kind=BASELINE, target="net", level=settings.ml_forecast_interval)

    def statistical(spec: CashflowSpec) -> FitPredict:
        return lambda n: CashflowModel(spec).fit(daily.iloc[:n]).predict(horizon)

    out = {spec.label: statistical(spec) for spec in [baseline, *specs]}
    if book is not None:
        config = book_config(settings)

        def from_book(n: int) -> pd.DataFrame:
            cutoff = day_number(daily["cash_date"].iloc[n - 1])
            return BookModel(config).fit(book, cutoff).predict(horizon)

        out[BOOK] = from_book
    return out


def book_config(settings: Settings) -> BookConfig:
    return BookConfig(
        horizon=settings.ml_forecast_horizon_days,
        level=settings.ml_forecast_interval,
        calibration_cutoffs=settings.ml_book_calibration_cutoffs,
    )


def load_book_if_wanted(settings: Settings, end: dt.date) -> BookData | None:
    """The book when ``book`` is a candidate; None (with a warning naming why) when it is not
    or the silver staging views are missing."""
    if BOOK not in settings.ml_forecast_candidates:
        return None
    try:
        return load_book(settings, end)
    except StageError as exc:
        log.warning("UC09: the book model is not a candidate this run: %s", exc)
        return None


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    end = settings.business_date
    horizon, folds = settings.ml_forecast_horizon_days, settings.ml_backtest_folds
    inner = settings.ml_backtest_inner_folds
    daily = load_daily_cashflow(settings, end)
    specs = candidate_specs(settings)
    book = load_book_if_wanted(settings, end)
    forecasters = candidate_forecasters(settings, daily, specs, book)
    baseline_label = f"{BASELINE}/net"
    try:
        result = nested_backtest(daily, forecasters, horizon, folds, inner, baseline=baseline_label)
    except ValueError as exc:
        raise StageError(f"UC09 backtest: {exc}") from None
    chosen = result.chosen
    procedure = result.procedure_score()
    baseline = result.candidate_score(baseline_label)

    start = time.perf_counter()
    model: CashflowModel | BookModel
    if chosen == BOOK:
        assert book is not None
        model = BookModel(book_config(settings)).fit(book, day_number(end))
        python_model: Any = BookPyfunc(model)
        params: dict[str, Any] = {"kind": BOOK, "target": "split", **model.config.as_dict()}
    else:
        spec = next(s for s in specs if s.label == chosen)
        model = CashflowModel(spec).fit(daily)
        python_model = CashflowPyfunc()
        params = spec.as_dict()
    fit_seconds = time.perf_counter() - start
    example = model.predict(horizon)
    example["forecast_date"] = pd.to_datetime(example["forecast_date"])
    sizes: dict[str, float] = {}

    def save(path: Path) -> None:
        model.save(path)
        sizes["artifact_mb"] = _folder_mb(path)

    data_start, data_end = str(daily["cash_date"].iloc[0]), str(daily["cash_date"].iloc[-1])
    chosen_plain = result.candidate_score(chosen)
    metrics = {
        # the selection procedure's nested figures: what validate-models compares
        **procedure.metrics(),
        **chosen_plain.metrics("chosen_"),
        **baseline.metrics("baseline_"),
        "relative_mase": procedure.mase / baseline.mase,
        "fit_seconds": fit_seconds,
        "n_days": float(len(daily)),
        **{f"backtest_seconds.{k.replace('/', '_')}": v for k, v in result.seconds.items()},
        **{
            f"cand.{label.replace('/', '_')}.{k}": v
            for label in result.per_fold
            for k, v in result.candidate_score(label).metrics().items()
        },
    }
    document = {**result.as_document(), "folds": result.outer}
    version = registry.log_and_register(
        settings,
        model_name=registry.UC09_MODEL,
        use_case="uc09",
        python_model=python_model,
        save=save,
        input_example=pd.DataFrame({"horizon": [horizon]}),
        output_example=example,
        params={**params, "horizon_days": horizon, "backtest_folds": folds, "inner_folds": inner},
        metrics=metrics,
        tags={
            "logical_date": end.isoformat(),
            "data_start": data_start,
            "data_end": data_end,
            "spec": json.dumps(params, sort_keys=True),
            "model_kind": chosen,
        },
        documents={"backtest.json": document},
    )
    with registry.tracking(settings) as client:
        client.log_metric(version.run_id, "artifact_mb", sizes.get("artifact_mb", float("nan")))
    log.info(
        "UC09: registered %s v%s (%s; nested MASE %.3f, coverage %.2f vs seasonal naive %.3f; "
        "data %s..%s)",
        registry.UC09_MODEL,
        version.version,
        chosen,
        procedure.mase,
        procedure.coverage,
        baseline.mase,
        data_start,
        data_end,
    )
