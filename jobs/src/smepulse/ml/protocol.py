"""The small model protocol every UC09 forecaster and UC10 detector follows.

A challenger (a seasonal-naive or ETS baseline, another detector) implements the same four
methods as the seed's choice (Prophet, IsolationForest), so the backtest, the registry and the
predict stages treat them alike.

Contracts:

* :class:`Forecaster` — ``fit(history)`` takes a daily, gap-free frame with columns ``ds``
  (datetime64, ascending) and ``y`` (float); ``predict(horizon)`` returns ``horizon`` rows for
  the days right after the last training day, with columns ``ds``, ``yhat``, ``yhat_lower``,
  ``yhat_upper`` (the interval at the level given to the constructor).
* :class:`Detector` — ``fit(features)`` takes a numeric feature frame (the columns of
  :data:`smepulse.ml.features.FEATURE_COLUMNS`); ``score(features)`` returns one float per
  row, higher meaning more anomalous (scores are comparable within one fitted model only).
* Both: ``save(path)`` writes a folder that ``load(path)`` (a classmethod) turns back into an
  equivalent fitted model; predictions after a round trip are identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@runtime_checkable
class Forecaster(Protocol):
    """A univariate daily forecaster with prediction intervals."""

    kind: str

    def fit(self, history: pd.DataFrame) -> Self: ...

    def predict(self, horizon: int) -> pd.DataFrame: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


@runtime_checkable
class Detector(Protocol):
    """An unsupervised anomaly detector over engineered features."""

    kind: str

    def fit(self, features: pd.DataFrame) -> Self: ...

    def score(self, features: pd.DataFrame) -> FloatArray: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


class NotFittedError(RuntimeError):
    """``predict``/``score``/``save`` called before ``fit``."""
