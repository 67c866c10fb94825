"""UC10 detectors: IsolationForest (the seed's choice) and a robust z-score baseline.

:class:`AnomalyModel` is what is backtested, registered and served: a detector plus the alert
threshold chosen on its training data (the score quantile that flags ``alert_rate`` of the
training transactions, the same idea as IsolationForest's ``contamination``).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from smepulse.ml.features import FEATURE_COLUMNS
from smepulse.ml.protocol import BoolArray, Detector, FloatArray, NotFittedError

# Alerts per window are held within target rate ± 25 % (3–5 % for the default 4 %).
ALERT_RATE_TOLERANCE = 0.25


class IsolationForestDetector:
    """scikit-learn IsolationForest; score = minus ``score_samples`` (higher = more anomalous)."""

    kind = "isolation_forest"

    def __init__(self, n_estimators: int = 300, max_samples: int = 512, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed
        self.model: Any = None

    def fit(self, features: pd.DataFrame) -> Self:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(features)),
            random_state=self.seed,
            n_jobs=1,
        ).fit(features[FEATURE_COLUMNS].to_numpy(dtype=float))
        return self

    def score(self, features: pd.DataFrame) -> FloatArray:
        if self.model is None:
            raise NotFittedError("IsolationForestDetector.score before fit")
        scores: FloatArray = -self.model.score_samples(
            features[FEATURE_COLUMNS].to_numpy(dtype=float)
        )
        return scores

    def save(self, path: Path) -> None:
        if self.model is None:
            raise NotFittedError("IsolationForestDetector.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        # A plain pickle read back only by this code (the same scikit-learn the image pins).
        with (path / "isolation_forest.pkl").open("wb") as fh:
            pickle.dump(self.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        params = {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
        }
        (path / "params.json").write_text(json.dumps(params))

    @classmethod
    def load(cls, path: Path) -> Self:
        detector = cls(**json.loads((path / "params.json").read_text()))
        with (path / "isolation_forest.pkl").open("rb") as fh:
            detector.model = pickle.load(fh)
        return detector


class RobustZDetector:
    """Baseline: each feature as a robust z-score (median, 1.4826·MAD from training; the
    standard deviation when the MAD is zero); the score is the largest |z| of a row."""

    kind = "robust_z"

    def __init__(self) -> None:
        self.center: dict[str, float] = {}
        self.scale: dict[str, float] = {}

    def fit(self, features: pd.DataFrame) -> Self:
        for column in FEATURE_COLUMNS:
            values = features[column].to_numpy(dtype=float)
            median = float(np.median(values))
            scale = 1.4826 * float(np.median(np.abs(values - median)))
            if scale <= 0:
                scale = float(values.std()) or 1.0
            self.center[column], self.scale[column] = median, scale
        return self

    def score(self, features: pd.DataFrame) -> FloatArray:
        if not self.center:
            raise NotFittedError("RobustZDetector.score before fit")
        z = np.column_stack(
            [
                np.abs(features[c].to_numpy(dtype=float) - self.center[c]) / self.scale[c]
                for c in FEATURE_COLUMNS
            ]
        )
        scores: FloatArray = z.max(axis=1)
        return scores

    def save(self, path: Path) -> None:
        if not self.center:
            raise NotFittedError("RobustZDetector.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        (path / "robust_z.json").write_text(
            json.dumps({"center": self.center, "scale": self.scale})
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        state = json.loads((path / "robust_z.json").read_text())
        detector = cls()
        detector.center, detector.scale = state["center"], state["scale"]
        return detector


KINDS: dict[str, type[IsolationForestDetector] | type[RobustZDetector]] = {
    "isolation_forest": IsolationForestDetector,
    "robust_z": RobustZDetector,
}


@dataclass(frozen=True)
class AnomalySpec:
    """How to build an :class:`AnomalyModel`; logged to MLflow as params."""

    kind: str = "isolation_forest"
    alert_rate: float = 0.04

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown UC10 detector {self.kind!r}; known: {', '.join(KINDS)}")
        if not 0 < self.alert_rate < 0.5:
            raise ValueError(f"UC10 alert_rate must be in (0, 0.5), not {self.alert_rate}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnomalyModel:
    """A detector and its alert threshold.

    ``fit(features)`` fits the detector and sets ``threshold`` to the (1 - alert_rate) quantile
    of the training scores; ``score`` returns the detector's scores; ``flag`` says which rows
    are at or above the threshold.
    """

    def __init__(self, spec: AnomalySpec) -> None:
        self.spec = spec
        self.detector: Detector = KINDS[spec.kind]()
        self.threshold: float | None = None

    def fit(self, features: pd.DataFrame) -> Self:
        self.detector.fit(features)
        self.threshold = float(np.quantile(self.detector.score(features), 1 - self.spec.alert_rate))
        return self

    def score(self, features: pd.DataFrame) -> FloatArray:
        return self.detector.score(features)

    def flag(self, scores: FloatArray) -> BoolArray:
        if self.threshold is None:
            raise NotFittedError("AnomalyModel.flag before fit")
        flags: BoolArray = scores >= self.threshold
        return flags

    def save(self, path: Path) -> None:
        if self.threshold is None:
            raise NotFittedError("AnomalyModel.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "spec": self.spec.as_dict(),
            "threshold": self.threshold,
            "features": FEATURE_COLUMNS,
        }
        (path / "anomaly.json").write_text(json.dumps(meta))
        self.detector.save(path / "detector")

    @classmethod
    def load(cls, path: Path) -> Self:
        meta = json.loads((path / "anomaly.json").read_text())
        if meta["features"] != FEATURE_COLUMNS:
            raise ValueError(
                f"model at {path} was trained on features {meta['features']}, this code builds "
                f"{FEATURE_COLUMNS}: retrain with the ml-training pipeline"
            )
        model = cls(AnomalySpec(**meta["spec"]))
        model.detector = KINDS[model.spec.kind].load(path / "detector")
        model.threshold = float(meta["threshold"])
        return model
