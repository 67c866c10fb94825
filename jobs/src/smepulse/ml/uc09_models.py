"""UC09 forecasters: Prophet with Vietnamese holidays, AutoETS, and a weekly seasonal naive.

Each follows :class:`~smepulse.ml.protocol.Forecaster`; :mod:`smepulse.ml.cashflow`
combines them into the served model (net, or inflow minus outflow).
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from smepulse.ml.holidays import LAST_YEAR, prophet_holidays
from smepulse.ml.protocol import NotFittedError

log = logging.getLogger(__name__)
SEASON = 7
OUTPUT_COLUMNS = ["ds", "yhat", "yhat_lower", "yhat_upper"]


def _future_dates(last: pd.Timestamp, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(last + pd.Timedelta(days=1), periods=horizon, freq="D")


class SeasonalNaive:
    """Weekly seasonal naive: tomorrow = the same weekday last week.

    Intervals: empirical quantiles of the in-sample lag-7 differences, widened by sqrt(number of
    weeks ahead) as for a seasonal random walk.
    """

    kind = "seasonal_naive"

    def __init__(self, level: float = 0.8) -> None:
        self.level = level
        self.last_week: list[float] = []
        self.last_ds: pd.Timestamp | None = None
        self.q_low = 0.0
        self.q_high = 0.0

    def fit(self, history: pd.DataFrame) -> Self:
        y = history["y"].to_numpy(dtype=float)
        if len(y) < 2 * SEASON:
            raise ValueError(f"seasonal naive needs at least {2 * SEASON} days, got {len(y)}")
        diffs = y[SEASON:] - y[:-SEASON]
        alpha = (1 - self.level) / 2
        self.q_low, self.q_high = (float(v) for v in np.quantile(diffs, [alpha, 1 - alpha]))
        self.last_week = [float(v) for v in y[-SEASON:]]
        self.last_ds = pd.Timestamp(history["ds"].iloc[-1])
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if self.last_ds is None:
            raise NotFittedError("SeasonalNaive.predict before fit")
        h = np.arange(horizon)
        yhat = np.array(self.last_week)[h % SEASON]
        widen = np.sqrt(h // SEASON + 1)
        return pd.DataFrame(
            {
                "ds": _future_dates(self.last_ds, horizon),
                "yhat": yhat,
                "yhat_lower": yhat + self.q_low * widen,
                "yhat_upper": yhat + self.q_high * widen,
            }
        )

    def save(self, path: Path) -> None:
        if self.last_ds is None:
            raise NotFittedError("SeasonalNaive.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "level": self.level,
            "last_week": self.last_week,
            "last_ds": self.last_ds.isoformat(),
            "q_low": self.q_low,
            "q_high": self.q_high,
        }
        (path / "seasonal_naive.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, path: Path) -> Self:
        state = json.loads((path / "seasonal_naive.json").read_text())
        model = cls(level=state["level"])
        model.last_week = state["last_week"]
        model.last_ds = pd.Timestamp(state["last_ds"])
        model.q_low, model.q_high = state["q_low"], state["q_high"]
        return model


class ETSForecaster:
    """statsforecast AutoETS with a weekly season (model form chosen by AICc)."""

    kind = "ets"

    def __init__(self, level: float = 0.8) -> None:
        self.level = level
        self.model: Any = None
        self.last_ds: pd.Timestamp | None = None

    def fit(self, history: pd.DataFrame) -> Self:
        from statsforecast.models import AutoETS

        self.model = AutoETS(season_length=SEASON).fit(history["y"].to_numpy(dtype=float))
        self.last_ds = pd.Timestamp(history["ds"].iloc[-1])
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if self.model is None or self.last_ds is None:
            raise NotFittedError("ETSForecaster.predict before fit")
        pct = round(self.level * 100)
        out = self.model.predict(h=horizon, level=[pct])
        return pd.DataFrame(
            {
                "ds": _future_dates(self.last_ds, horizon),
                "yhat": out["mean"],
                "yhat_lower": out[f"lo-{pct}"],
                "yhat_upper": out[f"hi-{pct}"],
            }
        )

    def save(self, path: Path) -> None:
        if self.model is None or self.last_ds is None:
            raise NotFittedError("ETSForecaster.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        # statsforecast has no portable format; the pickle is only ever read by this code.
        with (path / "ets.pkl").open("wb") as fh:
            pickle.dump({"level": self.level, "model": self.model, "last_ds": self.last_ds}, fh)

    @classmethod
    def load(cls, path: Path) -> Self:
        with (path / "ets.pkl").open("rb") as fh:
            state = pickle.load(fh)
        model = cls(level=state["level"])
        model.model, model.last_ds = state["model"], state["last_ds"]
        return model


def _calendar_regressors(ds: pd.Series) -> pd.DataFrame:
    """Calendar effects known in advance: payroll/rent cluster at the turn of the month."""
    days_in_month = ds.dt.days_in_month
    return pd.DataFrame(
        {
            "month_end": (ds.dt.day > days_in_month - 3).astype(float),
            "month_start": (ds.dt.day <= 3).astype(float),
        },
        index=ds.index,
    )


class ProphetForecaster:
    """Prophet with weekly, monthly and (with a year of data) yearly seasonality, Vietnamese
    holidays (Tết window -7..+10 days) and turn-of-month regressors."""

    kind = "prophet"

    def __init__(
        self,
        level: float = 0.8,
        seasonality_mode: Literal["additive", "multiplicative"] = "additive",
    ) -> None:
        self.level = level
        self.seasonality_mode = seasonality_mode
        self.model: Any = None
        self.last_ds: pd.Timestamp | None = None

    def fit(self, history: pd.DataFrame) -> Self:
        from prophet import Prophet

        logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
        first = int(history["ds"].iloc[0].year)
        model = Prophet(
            holidays=prophet_holidays(max(first, 2020), LAST_YEAR),
            weekly_seasonality=True,
            yearly_seasonality=len(history) >= 365,
            daily_seasonality=False,
            seasonality_mode=self.seasonality_mode,
            interval_width=self.level,
            uncertainty_samples=300,
        )
        model.add_seasonality(name="monthly", period=30.5, fourier_order=5)
        for name in ("month_end", "month_start"):
            model.add_regressor(name)
        frame = pd.concat([history[["ds", "y"]], _calendar_regressors(history["ds"])], axis=1)
        self.model = model.fit(frame)
        self.last_ds = pd.Timestamp(history["ds"].iloc[-1])
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if self.model is None or self.last_ds is None:
            raise NotFittedError("ProphetForecaster.predict before fit")
        future = pd.DataFrame({"ds": _future_dates(self.last_ds, horizon)})
        future = pd.concat([future, _calendar_regressors(future["ds"])], axis=1)
        np.random.seed(0)  # Prophet samples its intervals: make them reproducible
        out: pd.DataFrame = self.model.predict(future)[OUTPUT_COLUMNS]
        return out.reset_index(drop=True)

    def save(self, path: Path) -> None:
        from prophet.serialize import model_to_json

        if self.model is None or self.last_ds is None:
            raise NotFittedError("ProphetForecaster.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        (path / "prophet.json").write_text(model_to_json(self.model))
        meta = {
            "level": self.level,
            "seasonality_mode": self.seasonality_mode,
            "last_ds": self.last_ds.isoformat(),
        }
        (path / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path) -> Self:
        from prophet.serialize import model_from_json

        meta = json.loads((path / "meta.json").read_text())
        model = cls(level=meta["level"], seasonality_mode=meta["seasonality_mode"])
        model.model = model_from_json((path / "prophet.json").read_text())
        model.last_ds = pd.Timestamp(meta["last_ds"])
        return model


KINDS: dict[str, type[SeasonalNaive] | type[ETSForecaster] | type[ProphetForecaster]] = {
    "seasonal_naive": SeasonalNaive,
    "ets": ETSForecaster,
    "prophet": ProphetForecaster,
}
