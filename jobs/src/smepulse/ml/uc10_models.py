"""UC10 detectors: the served ensemble, its members, and the robust z-score baseline.

* ``ensemble`` (served): IsolationForest (the seed's choice) + the empirical-tail detector
  (ECOD), each calibrated to "how rare among training transactions", averaged.
* ``robust_z`` (baseline): the largest robust z-score of a row's features. It is registered
  too, and serves whenever no champion exists (``uc10-detect``).

:class:`AnomalyModel` is what is backtested, registered and served: a detector plus its alert
threshold, a *score level* fixed at training — the score reached by ``alert_rate`` of the
training transactions. Serving flags exactly the rows at or above that level, with no quota:
a quiet week gets few alerts, a bad one many, and the figures measured at the threshold are
the figures of what is served.
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


class EmpiricalTailDetector:
    """ECOD (Li et al., 2022, "empirical cumulative distribution outlier detection"): each
    feature's value becomes its tail probability among the training values — the right tail for
    a right-skewed feature, the left tail for a left-skewed one — and the score is the sum of
    −log tail probabilities. No distance, no scale, no parameter: robust to the heavy tails and
    ties that money and time features have, where a z-score's MAD collapses to zero."""

    kind = "empirical_tail"

    def __init__(self) -> None:
        self.reference: FloatArray | None = None  # sorted training values, one column per feature
        self.left: BoolArray | None = None  # features whose unusual side is the low one

    def fit(self, features: pd.DataFrame) -> Self:
        values = features[FEATURE_COLUMNS].to_numpy(dtype=float)
        self.reference = np.sort(values, axis=0)
        centred = values - values.mean(axis=0)
        third = (centred**3).mean(axis=0)
        self.left = third < 0
        return self

    def score(self, features: pd.DataFrame) -> FloatArray:
        if self.reference is None or self.left is None:
            raise NotFittedError("EmpiricalTailDetector.score before fit")
        values = features[FEATURE_COLUMNS].to_numpy(dtype=float)
        n = self.reference.shape[0]
        total = np.zeros(len(values))
        for j in range(values.shape[1]):
            column = self.reference[:, j]
            if self.left[j]:
                count = np.searchsorted(column, values[:, j], side="right")
            else:
                count = n - np.searchsorted(column, values[:, j], side="left")
            total += -np.log((count + 1.0) / (n + 1.0))
        return total

    def save(self, path: Path) -> None:
        if self.reference is None or self.left is None:
            raise NotFittedError("EmpiricalTailDetector.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "reference.npy", self.reference)
        np.save(path / "left.npy", self.left)

    @classmethod
    def load(cls, path: Path) -> Self:
        detector = cls()
        detector.reference = np.load(path / "reference.npy")
        detector.left = np.load(path / "left.npy")
        return detector


def _tail_scores(train: FloatArray, scores: FloatArray) -> FloatArray:
    """−log10 of each score's right-tail share among the training scores (add-one smoothed):
    2.0 means "higher than all but 1 % of training transactions"."""
    ordered = np.sort(train)
    above = len(ordered) - np.searchsorted(ordered, scores, side="left")
    out: FloatArray = -np.log10((above + 1.0) / (len(ordered) + 1.0))
    return out


class EnsembleDetector:
    """IsolationForest and the empirical-tail detector side by side, each calibrated on its own
    training scores (a score becomes "how rare among training transactions", so the scales are
    comparable), combined by the mean rarity. IsolationForest finds unusual *combinations*; the
    tail detector finds extreme single-profile deviations that a forest's random splits dilute.
    Neither alone wins on every business (the issue's measurements)."""

    kind = "ensemble"

    def __init__(self) -> None:
        self.members: dict[str, IsolationForestDetector | EmpiricalTailDetector] = {
            "isolation_forest": IsolationForestDetector(),
            "empirical_tail": EmpiricalTailDetector(),
        }
        self.reference: dict[str, FloatArray] = {}

    def fit(self, features: pd.DataFrame) -> Self:
        for name, member in self.members.items():
            member.fit(features)
            self.reference[name] = np.sort(member.score(features))
        return self

    def member_scores(self, features: pd.DataFrame) -> dict[str, FloatArray]:
        """Each member's calibrated rarity (−log10 tail share)."""
        if not self.reference:
            raise NotFittedError("EnsembleDetector.score before fit")
        return {
            name: _tail_scores(self.reference[name], member.score(features))
            for name, member in self.members.items()
        }

    def score(self, features: pd.DataFrame) -> FloatArray:
        parts = self.member_scores(features)
        scores: FloatArray = np.mean(np.column_stack(list(parts.values())), axis=1)
        return scores

    def save(self, path: Path) -> None:
        if not self.reference:
            raise NotFittedError("EnsembleDetector.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        for name, member in self.members.items():
            member.save(path / name)
            np.save(path / f"{name}.reference.npy", self.reference[name])

    @classmethod
    def load(cls, path: Path) -> Self:
        detector = cls()
        for name, member in list(detector.members.items()):
            detector.members[name] = type(member).load(path / name)
            detector.reference[name] = np.load(path / f"{name}.reference.npy")
        return detector


DetectorType = (
    type[IsolationForestDetector]
    | type[RobustZDetector]
    | type[EmpiricalTailDetector]
    | type[EnsembleDetector]
)
KINDS: dict[str, DetectorType] = {
    "isolation_forest": IsolationForestDetector,
    "robust_z": RobustZDetector,
    "empirical_tail": EmpiricalTailDetector,
    "ensemble": EnsembleDetector,
}


@dataclass(frozen=True)
class AnomalySpec:
    """How to build an :class:`AnomalyModel`; logged to MLflow as params."""

    kind: str = "ensemble"
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
    of the training scores (a score level, kept as it is when serving); ``score`` returns the detector's scores; ``flag`` says which rows
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
