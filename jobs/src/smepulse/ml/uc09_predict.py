"""Stage ``uc09-forecast``: the champion's 30-day cash-flow forecast into ``gold.ml_cashflow_forecast``.

One row per day after the logical date (``ml_forecast_horizon_days`` rows): net cash flow
``yhat_vnd`` with its interval, the inflow/outflow parts when the champion models them
separately (NULL otherwise), and the model name, version, kind and MLflow run id. The table is
replaced atomically; on any failure the previous forecast stays as it was.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)
TABLE = "ml_cashflow_forecast"
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
