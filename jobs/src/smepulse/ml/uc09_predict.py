"""Stage ``uc09-forecast``: the champion's 30-day cash-flow forecast into ``gold.ml_cashflow_forecast``.

One row per day after the logical date (``ml_forecast_horizon_days`` rows): net cash flow
``yhat_vnd`` with its interval, the inflow/outflow parts when the champion models them
separately (NULL otherwise), and the model name, version, kind and MLflow run id. The table is
replaced atomically; on any failure the previous forecast stays as it was.

A book-based champion forecasts from the book as of the logical date (open invoices and bills,
habits learned up to it) with the intervals calibrated at training, and also writes
``gold.ml_cashflow_forecast_components``: one row per day and component (collections from open
invoices, from new invoices, payments, payroll, rent, tax, utilities, other) with a readable
``detail`` line. Every forecast is also kept in the forecast history the accuracy monitor
scores (:mod:`smepulse.ml.uc09_accuracy`).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.uc09_accuracy import monitor, record_forecast
from smepulse.ml.uc09_book import BookModel
from smepulse.ml.uc09_book_data import day_number, load_book
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)
TABLE = "ml_cashflow_forecast"
COMPONENTS_TABLE = "ml_cashflow_forecast_components"
STALE_DAYS = 14


def _vnd(series: pd.Series) -> pd.Series:
    return series.round().astype("Int64")


def forecast_frame(
    forecast: pd.DataFrame, *, version: registry.RegisteredVersion, kind: str, logical_date: dt.date
) -> pd.DataFrame:
    """The gold rows from a model's forecast (columns of ``CashflowModel.predict``)."""
    return pd.DataFrame(
        {
            "forecast_date": forecast["forecast_date"].to_numpy(),
            "yhat_vnd": _vnd(forecast["yhat"]),
            "yhat_lower_vnd": _vnd(forecast["yhat_lower"]),
            "yhat_upper_vnd": _vnd(forecast["yhat_upper"]),
            "inflow_yhat_vnd": _vnd(forecast["inflow_yhat"]),
            "outflow_yhat_vnd": _vnd(forecast["outflow_yhat"]),
            "model_name": version.name,
            "model_version": version.version,
            "model_kind": kind,
            "mlflow_run_id": version.run_id,
            "logical_date": logical_date,
            "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"),
        }
    )


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    logical = settings.business_date
    horizon = settings.ml_forecast_horizon_days
    wrapper, version = registry.load_champion(settings, registry.UC09_MODEL)
    model = wrapper.model
    if isinstance(model, BookModel):
        _run_book(settings, model, version)
        return
    last = model.last_date.date()
    gap = (logical - last).days
    if gap < 0:
        raise StageError(
            f"the UC09 champion ({registry.UC09_MODEL} v{version.version}) was trained on data up to "
            f"{last}, after the logical date {logical}: its forecast would not be one made on "
            f"{logical}; run ml-training for {logical} first or forecast a later date"
        )
    if gap > STALE_DAYS:
        log.warning(
            "UC09 champion v%s was trained on data up to %s, %d days before %s: retrain soon",
            version.version,
            last,
            gap,
            logical,
        )
    forecast = model.predict(gap + horizon).iloc[gap:].reset_index(drop=True)
    rows = forecast_frame(forecast, version=version, kind=model.spec.label, logical_date=logical)
    get_warehouse(settings).replace_table(settings.gold_schema, TABLE, rows)
    record_forecast(settings, rows)
    monitor(settings)
    log.info(
        "UC09: wrote %d forecast days %s..%s to %s.%s (champion v%s, %s)",
        len(rows),
        rows["forecast_date"].iloc[0],
        rows["forecast_date"].iloc[-1],
        settings.gold_schema,
        TABLE,
        version.version,
        model.spec.label,
    )


def _run_book(settings: Settings, model: BookModel, version: registry.RegisteredVersion) -> None:
    """The book-based champion: today's book, the calibrated intervals (module docstring)."""
    logical = settings.business_date
    horizon = settings.ml_forecast_horizon_days
    if horizon > model.config.horizon:
        raise StageError(
            f"SMEPULSE_ML_FORECAST_HORIZON_DAYS={horizon} exceeds the {model.config.horizon} days "
            f"the UC09 champion v{version.version} was calibrated for: run ml-training first"
        )
    model.refresh(load_book(settings, logical), day_number(logical))
    forecast = model.predict(horizon)
    rows = forecast_frame(forecast, version=version, kind="book", logical_date=logical)
    parts = model.explain()
    parts = parts[parts["forecast_date"] <= rows["forecast_date"].iloc[-1]].assign(
        amount_vnd=lambda f: _vnd(f["amount_vnd"]),
        model_version=version.version,
        logical_date=logical,
    )
    warehouse = get_warehouse(settings)
    warehouse.replace_table(settings.gold_schema, TABLE, rows)
    warehouse.replace_table(settings.gold_schema, COMPONENTS_TABLE, parts)
    record_forecast(settings, rows)
    monitor(settings)
    log.info(
        "UC09: wrote %d forecast days %s..%s and %d components (book champion v%s)",
        len(rows),
        rows["forecast_date"].iloc[0],
        rows["forecast_date"].iloc[-1],
        len(parts),
        version.version,
    )
