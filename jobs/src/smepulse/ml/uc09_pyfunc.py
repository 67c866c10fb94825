"""MLflow ``pyfunc`` wrapper of the book-based UC09 model (:class:`BookModel`).

The artefact holds the configuration and the conformal error quantiles, not a forecast: the
book changes every day, so ``uc09-forecast`` loads the model, rebuilds the book as of its
logical date and calls :meth:`BookModel.refresh`. As a generic pyfunc (``predict``) it returns
the forecast made at training time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from smepulse.ml.pyfunc import ARTIFACT_KEY
from smepulse.ml.uc09_book import BookModel


class BookPyfunc(PythonModel):  # type: ignore[misc]
    """Input: one row with ``horizon`` (days). Output: :meth:`BookModel.predict`'s frame."""

    def __init__(self, model: BookModel | None = None) -> None:
        self.model = model

    def load_context(self, context: Any) -> None:
        self.model = BookModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None or self.model.forecast is None:
            raise RuntimeError(
                "the book model forecasts from a book: call refresh(book, day) first"
            )
        out = self.model.predict(int(model_input["horizon"].iloc[0]))
        out["forecast_date"] = pd.to_datetime(out["forecast_date"])
        return out
