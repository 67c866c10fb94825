"""The model protocol: fit/predict/score, and save -> load round trips that predict identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.cashflow import CashflowModel, CashflowSpec
from smepulse.ml.features import FEATURE_COLUMNS, build_features, feature_matrix
from smepulse.ml.protocol import Detector, Forecaster, NotFittedError
from smepulse.ml.uc09_models import (
    ETSForecaster,
    ProphetForecaster,
    SeasonalNaive,
)
from smepulse.ml.uc10_models import (
    AnomalyModel,
    AnomalySpec,
    EmpiricalTailDetector,
    EnsembleDetector,
    IsolationForestDetector,
    RobustZDetector,
)
from tests.unit.ml.synthetic import daily_cashflow, transactions

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return daily_cashflow(days=120)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    frame, _ = transactions(days=40, per_day=20, seed=3)
    return feature_matrix(build_features(frame))


def _series(daily: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.to_datetime(daily["cash_date"]), "y": daily["net_vnd"]})


@pytest.mark.parametrize("cls", [SeasonalNaive, ETSForecaster, ProphetForecaster])
def test_forecaster_round_trip(cls: type[Forecaster], daily: pd.DataFrame, tmp_path: Path) -> None:
    model = cls(level=0.8).fit(_series(daily))
    assert isinstance(model, Forecaster)
    before = model.predict(10)
    model.save(tmp_path / "m")
    after = cls.load(tmp_path / "m").predict(10)
    pd.testing.assert_frame_equal(before, after)
    assert list(before.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper"]
    assert before["ds"].iloc[0] == pd.Timestamp(daily["cash_date"].iloc[-1]) + pd.Timedelta(days=1)
    assert (before["yhat_lower"] <= before["yhat"]).all() and (
        before["yhat"] <= before["yhat_upper"]
    ).all()


def test_seasonal_naive_repeats_last_week(daily: pd.DataFrame) -> None:
    out = SeasonalNaive().fit(_series(daily)).predict(14)
    last_week = daily["net_vnd"].to_numpy()[-7:]
    np.testing.assert_allclose(out["yhat"].to_numpy(), np.tile(last_week, 2))
    widths = (out["yhat_upper"] - out["yhat_lower"]).to_numpy()
    assert widths[7] > widths[0]  # the second week ahead is less certain


def test_split_cashflow_model_round_trip(daily: pd.DataFrame, tmp_path: Path) -> None:
    model = CashflowModel(CashflowSpec(kind="ets", target="split")).fit(daily)
    before = model.predict(30)
    np.testing.assert_allclose(before["yhat"], before["inflow_yhat"] - before["outflow_yhat"])
    assert (before["outflow_yhat"] > 0).all()
    model.save(tmp_path / "m")
    loaded = CashflowModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(before, loaded.predict(30))
    assert loaded.spec == model.spec and loaded.last_date == model.last_date


def test_net_cashflow_model_has_no_parts(daily: pd.DataFrame) -> None:
    out = CashflowModel(CashflowSpec(kind="seasonal_naive", target="net")).fit(daily).predict(5)
    assert out["inflow_yhat"].isna().all()
    assert out["forecast_date"].iloc[0] == daily["cash_date"].iloc[-1] + pd.Timedelta(days=1)


def test_bad_specs_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown UC09 model kind"):
        CashflowSpec(kind="arima")
    with pytest.raises(ValueError, match="unknown UC10 detector"):
        AnomalySpec(kind="lof")


@pytest.mark.parametrize(
    "cls", [IsolationForestDetector, RobustZDetector, EmpiricalTailDetector, EnsembleDetector]
)
def test_detector_round_trip(cls: type[Detector], features: pd.DataFrame, tmp_path: Path) -> None:
    detector = cls().fit(features)
    assert isinstance(detector, Detector)
    scores = detector.score(features)
    assert scores.shape == (len(features),)
    detector.save(tmp_path / "d")
    np.testing.assert_array_equal(scores, cls.load(tmp_path / "d").score(features))


def test_anomaly_model_threshold_and_round_trip(features: pd.DataFrame, tmp_path: Path) -> None:
    model = AnomalyModel(AnomalySpec(alert_rate=0.05)).fit(features)
    flags = model.flag(model.score(features))
    assert flags.mean() == pytest.approx(0.05, abs=0.01)
    model.save(tmp_path / "a")
    loaded = AnomalyModel.load(tmp_path / "a")
    assert loaded.threshold == model.threshold
    np.testing.assert_array_equal(loaded.score(features), model.score(features))


def test_empirical_tail_scores_are_summed_tail_rarities() -> None:
    # Hand-checked: 9 training values 1..9 in every feature (right-skew 0 -> right tail).
    train = pd.DataFrame({c: np.arange(1.0, 10.0) for c in FEATURE_COLUMNS})
    detector = EmpiricalTailDetector().fit(train)
    probe = pd.DataFrame({c: [9.0, 100.0] for c in FEATURE_COLUMNS})
    # value 9: 1 training value >= 9 -> tail (1+1)/10; 100: none -> 1/10; summed over features.
    expected = [len(FEATURE_COLUMNS) * -np.log(0.2), len(FEATURE_COLUMNS) * -np.log(0.1)]
    np.testing.assert_allclose(detector.score(probe), expected)


def test_ensemble_ranks_a_planted_outlier_first(features: pd.DataFrame) -> None:
    model = AnomalyModel(AnomalySpec(kind="ensemble", alert_rate=0.05)).fit(features)
    odd = features.iloc[[0]].copy()
    odd[FEATURE_COLUMNS] = features[FEATURE_COLUMNS].max().to_numpy() * 3 + 1
    scores = model.score(pd.concat([features, odd], ignore_index=True))
    assert int(np.argmax(scores)) == len(features)  # the all-extreme row is the rarest
    assert model.flag(scores[-1:]).all()


def test_unfitted_models_say_so(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        SeasonalNaive().predict(3)
    with pytest.raises(NotFittedError):
        IsolationForestDetector().save(tmp_path)
    with pytest.raises(NotFittedError):
        CashflowModel(CashflowSpec()).predict(3)
