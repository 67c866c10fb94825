"""UC09 metrics and folds, UC10 evaluation against planted labels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from smepulse.ml.backtest import (
    backtest_cashflow,
    coverage,
    evaluate_detector,
    fold_cutoffs,
    mase,
    rmsse,
    smape,
)
from smepulse.ml.cashflow import CashflowSpec
from smepulse.ml.features import build_features
from smepulse.ml.uc10_models import AnomalySpec
from tests.unit.ml.synthetic import daily_cashflow, transactions

pytestmark = pytest.mark.unit


def test_scaled_errors_use_the_in_sample_weekly_naive() -> None:
    train = np.array(
        [10.0, 20, 30, 40, 50, 60, 70, 12, 22, 32, 42, 52, 62, 72]
    )  # lag-7 diffs all 2
    actual = np.array([14.0, 24, 34])
    assert mase(actual, actual, train) == 0
    assert mase(actual, actual + 4, train) == pytest.approx(2.0)
    assert rmsse(actual, actual - 6, train) == pytest.approx(3.0)


def test_smape_and_coverage() -> None:
    assert smape(np.array([0.0, 100]), np.array([0.0, 100])) == 0
    assert smape(np.array([100.0]), np.array([-100.0])) == pytest.approx(2.0)
    assert coverage(
        np.array([1.0, 5, 9]), np.array([0.0, 0, 0]), np.array([2.0, 6, 8])
    ) == pytest.approx(2 / 3)


def test_fold_cutoffs_step_back_one_horizon_and_shrink_when_history_is_short() -> None:
    assert fold_cutoffs(400, 30, 3) == [310, 340, 370]
    assert fold_cutoffs(150, 30, 4, min_train=90) == [90, 120]
    with pytest.raises(ValueError, match="at least 120 days"):
        fold_cutoffs(100, 30, 2, min_train=90)


def test_backtest_reports_every_fold_and_beats_naive_on_a_smooth_series() -> None:
    daily = daily_cashflow(days=220, seed=4)
    naive = backtest_cashflow(daily, CashflowSpec(kind="seasonal_naive"), 30, 3)
    ets = backtest_cashflow(daily, CashflowSpec(kind="ets", target="split"), 30, 3)
    assert [f["cutoff"] for f in naive.folds] == [
        str(daily["cash_date"].iloc[n - 1]) for n in (130, 160, 190)
    ]
    assert ets.mase < naive.mase
    assert 0 <= ets.coverage <= 1


def test_detector_evaluation_against_planted_labels() -> None:
    frame, labels = transactions(days=90, per_day=25, seed=11)
    features = build_features(frame)
    end = dt.date(2026, 6, 30)
    score = evaluate_detector(
        features, set(labels["txn_id"]), AnomalySpec(), end - dt.timedelta(days=20), end
    )
    in_window = labels[labels["txn_date"] >= end - dt.timedelta(days=20)]
    assert score.k == len(in_window) > 0
    assert score.roc_auc > 0.9 and score.precision_at_k > 0.6
    unlabelled = evaluate_detector(features, set(), AnomalySpec(), end - dt.timedelta(days=20), end)
    assert unlabelled.k == 0 and np.isnan(unlabelled.roc_auc)
    assert 0 < unlabelled.alert_rate < 0.2
