"""The UC09 model unit: net daily cash flow, forecast directly or as inflow minus outflow.

:class:`CashflowModel` is what is backtested, registered and served. Its :class:`CashflowSpec`
(kind, target, interval level) says how to rebuild it: ``target="net"`` forecasts net cash flow
directly; ``target="split"`` forecasts inflow and outflow separately and subtracts them. Split
intervals combine the two half-widths in quadrature, which assumes independent errors (the
backtest's coverage figure shows whether that holds on the data).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from smepulse.ml.protocol import Forecaster, NotFittedError
from smepulse.ml.uc09_models import KINDS


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
