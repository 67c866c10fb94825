"""UC09 forecasters: Prophet with Vietnamese holidays, AutoETS, and a weekly seasonal naive.

:class:`CashflowModel` is the unit that is backtested, registered and served. Its ``spec``
(kind, target, interval level) says how to rebuild it: ``target="net"`` forecasts net cash flow
directly; ``target="split"`` forecasts inflow and outflow separately and subtracts them. Split
intervals combine the two half-widths in quadrature, which assumes independent errors (the
backtest's coverage figure shows whether that holds on the data).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from smepulse.jobs.ml.holidays import LAST_YEAR, prophet_holidays
from smepulse.jobs.ml.protocol import Forecaster, NotFittedError

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


@dataclass(frozen=True)
class CashflowSpec:
    """How to build a :class:`CashflowModel`; logged to MLflow as params."""

    kind: str = "prophet"
    target: Literal["net", "split"] = "net"
    level: float = 0.8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown UC09 model kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.target not in ("net", "split"):
            raise ValueError(f"UC09 target must be 'net' or 'split', not {self.target!r}")

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.target}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _series(daily: pd.DataFrame, column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"ds": pd.to_datetime(daily["cash_date"]), "y": daily[column].astype(float)}
    )


class CashflowModel:
    """Net daily cash flow, forecast directly or as inflow minus outflow.

    ``fit(daily)`` takes the silver training set (cash_date, inflow_vnd, outflow_vnd, net_vnd;
    one row per day, ascending, no gaps). ``predict(horizon)`` returns ``forecast_date`` (date)
    and ``yhat``, ``yhat_lower``, ``yhat_upper`` for net cash flow, plus ``inflow_yhat`` and
    ``outflow_yhat`` (outflow as a positive amount; NaN for a net model).
    """

    def __init__(self, spec: CashflowSpec) -> None:
        self.spec = spec
        self.parts: dict[str, Forecaster] = {}
        self.last_date: pd.Timestamp | None = None

    def _new(self) -> Forecaster:
        forecaster: Forecaster = KINDS[self.spec.kind](level=self.spec.level)
        return forecaster

    def fit(self, daily: pd.DataFrame) -> Self:
        if self.spec.target == "net":
            self.parts = {"net": self._new().fit(_series(daily, "net_vnd"))}
        else:
            outflow = daily.assign(outflow_vnd=daily["outflow_vnd"].astype(float).abs())
            self.parts = {
                "inflow": self._new().fit(_series(daily, "inflow_vnd")),
                "outflow": self._new().fit(_series(outflow, "outflow_vnd")),
            }
        self.last_date = pd.Timestamp(daily["cash_date"].iloc[-1])
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if not self.parts:
            raise NotFittedError("CashflowModel.predict before fit")
        if self.spec.target == "net":
            net = self.parts["net"].predict(horizon)
            out = net.assign(inflow_yhat=math.nan, outflow_yhat=math.nan)
        else:
            inf = self.parts["inflow"].predict(horizon)
            outf = self.parts["outflow"].predict(horizon)
            yhat = inf["yhat"] - outf["yhat"]
            down = np.hypot(inf["yhat"] - inf["yhat_lower"], outf["yhat_upper"] - outf["yhat"])
            up = np.hypot(inf["yhat_upper"] - inf["yhat"], outf["yhat"] - outf["yhat_lower"])
            out = pd.DataFrame(
                {
                    "ds": inf["ds"],
                    "yhat": yhat,
                    "yhat_lower": yhat - down,
                    "yhat_upper": yhat + up,
                    "inflow_yhat": inf["yhat"],
                    "outflow_yhat": outf["yhat"],
                }
            )
        out.insert(0, "forecast_date", pd.to_datetime(out.pop("ds")).dt.date)
        return out.reset_index(drop=True)

    def save(self, path: Path) -> None:
        if not self.parts or self.last_date is None:
            raise NotFittedError("CashflowModel.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        meta = {"spec": self.spec.as_dict(), "last_date": self.last_date.date().isoformat()}
        (path / "cashflow.json").write_text(json.dumps(meta))
        for name, part in self.parts.items():
            part.save(path / name)

    @classmethod
    def load(cls, path: Path) -> Self:
        meta = json.loads((path / "cashflow.json").read_text())
        model = cls(CashflowSpec(**meta["spec"]))
        names = ["net"] if model.spec.target == "net" else ["inflow", "outflow"]
        model.parts = {name: KINDS[model.spec.kind].load(path / name) for name in names}
        model.last_date = pd.Timestamp(meta["last_date"])
        return model
