"""UC09's weekly seasonal-naive baseline: fitted and registered by ``uc09-forecast`` when no
champion exists, so a forecast is served from the first day.

The baseline's whole state is the last observed week, so a version fitted on one day is stale
the next: a version is registered per logical date (``smepulse-uc09-baseline``, tagged with
that date) and a re-run of the same date serves the version already registered for it. It is
fitted on the daily cash flow up to the logical date only (quiet days after the last
transaction counted as zeros).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.cashflow import CashflowModel, CashflowSpec
from smepulse.ml.pyfunc import CashflowPyfunc
from smepulse.ml.uc09_models import SEASON
from smepulse.settings import Settings

log = logging.getLogger(__name__)
BASELINE_KIND = "seasonal_naive"


def baseline_spec(settings: Settings) -> CashflowSpec:
    return CashflowSpec(kind=BASELINE_KIND, target="net", level=settings.ml_forecast_interval)


def _through(daily: pd.DataFrame, logical: dt.date) -> pd.DataFrame:
    """``daily`` extended with zero days up to ``logical``.

    Silver's daily cash flow ends on the last day with a bank transaction; the days after it, up
    to the logical date daily-etl ran for, had no cash movement (silver zero-fills such days
    between transactions the same way). Without them the "last week" would be an older week.
    """
    last = daily["cash_date"].iloc[-1]
    quiet = (logical - last).days
    if quiet <= 0:
        return daily
    if quiet > SEASON:
        log.warning(
            "UC09 baseline: the last cash movement is on %s, %d days before %s: "
            "the baseline forecasts quiet days",
            last,
            quiet,
            logical,
        )
    pad = pd.DataFrame(
        {
            "cash_date": [last + dt.timedelta(days=i) for i in range(1, quiet + 1)],
            **{c: 0.0 for c in ("inflow_vnd", "outflow_vnd", "net_vnd")},
        }
    )
    return pd.concat([daily, pad], ignore_index=True)


def register_baseline(
    settings: Settings, daily: pd.DataFrame, logical: dt.date
) -> tuple[CashflowModel, registry.RegisteredVersion]:
    """Fit the baseline on ``daily`` (rows up to ``logical``; the caller reads no later) and
    register it as a new version of ``smepulse-uc09-baseline`` tagged with ``logical``."""
    if len(daily) < 2 * SEASON:
        raise StageError(
            f"UC09 has no champion and too little history up to {logical} to fit the "
            f"seasonal-naive baseline ({len(daily)} days, needs {2 * SEASON}): "
            "run daily-etl for more days first"
        )
    daily = _through(daily, logical)
    spec = baseline_spec(settings)
    model = CashflowModel(spec).fit(daily)
    horizon = settings.ml_forecast_horizon_days
    example = model.predict(horizon)
    example["forecast_date"] = pd.to_datetime(example["forecast_date"])
    data_start, data_end = str(daily["cash_date"].iloc[0]), str(daily["cash_date"].iloc[-1])

    def save(path: Path) -> None:
        model.save(path)

    version = registry.log_and_register(
        settings,
        model_name=registry.UC09_BASELINE_MODEL,
        use_case="uc09",
        python_model=CashflowPyfunc(),
        save=save,
        input_example=pd.DataFrame({"horizon": [horizon]}),
        output_example=example,
        params={**spec.as_dict(), "horizon_days": horizon},
        metrics={"n_days": float(len(daily))},
        tags={
            "logical_date": logical.isoformat(),
            "data_start": data_start,
            "data_end": data_end,
            "spec": json.dumps(spec.as_dict(), sort_keys=True),
            "model_kind": spec.label,
            "registered_by": "uc09-forecast",
        },
        documents={},
    )
    log.info(
        "UC09: registered the baseline %s v%s (%s, data %s..%s)",
        registry.UC09_BASELINE_MODEL,
        version.version,
        spec.label,
        data_start,
        data_end,
    )
    return model, version
