"""Stage ``uc09-forecast``: the 30-day cash-flow forecast into ``gold.ml_cashflow_forecast``.

One row per day after the logical date (``ml_forecast_horizon_days`` rows): net cash flow
``yhat_vnd`` with its interval, the inflow/outflow parts when the serving model forecasts them
separately (NULL otherwise), and the model name, version, kind and MLflow run id. The table is
replaced atomically; on any failure the previous forecast stays as it was.

Which model serves (every row names it):

* the UC09 champion, unless it was trained after the logical date: then the stage refuses (its
  forecast would not be one made on that date), as ``uc10-detect`` does; run ml-training for
  that date first;
* with no champion, the weekly seasonal-naive baseline (``smepulse-uc09-baseline``, see
  :mod:`smepulse.ml.uc09_register`): fitted on the daily cash flow up to the logical date and
  registered (once per logical date; a re-run serves the version already registered). So the
  stage never fails only because nothing was promoted.

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
from smepulse.ml.cashflow import CashflowModel
from smepulse.ml.data import load_daily_cashflow
from smepulse.ml.uc09_accuracy import monitor, record_forecast
from smepulse.ml.uc09_book import BookModel
from smepulse.ml.uc09_book_data import day_number, load_book
from smepulse.ml.uc09_register import register_baseline
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


def serving_model(
    settings: Settings,
) -> tuple[CashflowModel | BookModel, registry.RegisteredVersion, str]:
    """The model to serve for the logical date, its version and its role (module docstring)."""
    logical = settings.business_date
    with registry.tracking(settings) as client:
        current = registry.champion(client, registry.UC09_MODEL)
        if current is not None:
            if current.logical_date > logical.isoformat():
                raise StageError(
                    f"the UC09 champion ({registry.UC09_MODEL} v{current.version}) was trained "
                    f"on data up to {current.tags.get('data_end', '?')} as of "
                    f"{current.logical_date}, after the logical date {logical}: its forecast "
                    f"would not be one made on {logical}; run ml-training for {logical} first "
                    "or forecast a later date"
                )
            return registry.load_version(client, current).model, current, "champion"
        done = registry.version_of_date(client, registry.UC09_BASELINE_MODEL, logical)
        if done is not None:
            return registry.load_version(client, done).model, done, "baseline"
    log.info("UC09: no champion: fitting the seasonal-naive baseline on data up to %s", logical)
    model, version = register_baseline(settings, load_daily_cashflow(settings, logical), logical)
    return model, version, "baseline"


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    logical = settings.business_date
    horizon = settings.ml_forecast_horizon_days
    model, version, role = serving_model(settings)
    if isinstance(model, BookModel):
        _run_book(settings, model, version)
        return
    assert model.last_date is not None
    last = model.last_date.date()
    gap = (logical - last).days
    if gap < 0:  # a version without a logical_date tag: its data tells
        raise StageError(
            f"the UC09 {role} ({version.name} v{version.version}) was trained on data up to "
            f"{last}, after the logical date {logical}: its forecast would not be one made on "
            f"{logical}; run ml-training for {logical} first or forecast a later date"
        )
    if gap > STALE_DAYS:
        log.warning(
            "UC09 %s v%s was fitted on data up to %s, %d days before %s: %s",
            role,
            version.version,
            last,
            gap,
            logical,
            "retrain soon" if role == "champion" else "daily cash flow is missing for those days",
        )
    forecast = model.predict(gap + horizon).iloc[gap:].reset_index(drop=True)
    rows = forecast_frame(forecast, version=version, kind=model.spec.label, logical_date=logical)
    get_warehouse(settings).replace_table(settings.gold_schema, TABLE, rows)
    record_forecast(settings, rows)
    monitor(settings)
    log.info(
        "UC09: wrote %d forecast days %s..%s to %s.%s (%s %s v%s, %s)",
        len(rows),
        rows["forecast_date"].iloc[0],
        rows["forecast_date"].iloc[-1],
        settings.gold_schema,
        TABLE,
        role,
        version.name,
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
