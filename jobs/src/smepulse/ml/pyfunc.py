"""MLflow ``pyfunc`` wrappers around the UC09/UC10 models.

The fitted model is saved with its own ``save`` (Prophet as JSON, the rest as JSON or a pickle
read back only by this code) into the MLflow artifact ``model``; ``load_context`` calls the
matching ``load``. So the registered model is usable both as a generic pyfunc (``predict``) and,
through ``unwrap_python_model().model``, as the typed object the stages use. Loading needs the
``smepulse`` package installed (it is, in the image and in the embedded stack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from smepulse.ml.cashflow import CashflowModel
from smepulse.ml.features import feature_matrix
from smepulse.ml.uc10_models import AnomalyModel

ARTIFACT_KEY = "model"


class CashflowPyfunc(PythonModel):  # type: ignore[misc]
    """Input: one row with ``horizon`` (days). Output: the forecast frame of
    :meth:`CashflowModel.predict` for the days after the training data."""

    def __init__(self) -> None:
        self.model: CashflowModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = CashflowModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        horizon = int(model_input["horizon"].iloc[0])
        out = self.model.predict(horizon)
        out["forecast_date"] = pd.to_datetime(out["forecast_date"])
        frame: pd.DataFrame = out
        return frame


class AnomalyPyfunc(PythonModel):  # type: ignore[misc]
    """Input: the feature columns. Output: ``anomaly_score`` and ``is_alert`` per row."""

    def __init__(self) -> None:
        self.model: AnomalyModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = AnomalyModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        scores = self.model.score(feature_matrix(model_input))
        return pd.DataFrame({"anomaly_score": scores, "is_alert": self.model.flag(scores)})
