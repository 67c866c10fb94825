"""The promotion rules of validate-models and the alert rule of uc10-detect (pure)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.promotion import decide, decide_unlabelled
from smepulse.ml.registry import RegisteredVersion
from smepulse.ml.uc10_detect import alerts_frame

pytestmark = pytest.mark.unit


def _mase(
    candidate: float, champion: float | None, *, baseline: float = 1.0, fresher: bool = True
) -> tuple[bool, str]:
    d = decide(
        metric="MASE",
        candidate=candidate,
        baseline=baseline,
        champion=champion,
        lower_is_better=True,
        candidate_is_fresher=fresher,
    )
    return d.promote, d.reason


def test_first_champion_needs_only_to_beat_the_baseline() -> None:
    assert _mase(0.8, None) == (True, "first champion: MASE 0.8000 beats the baseline's 1.0000")
    promote, reason = _mase(1.1, None)
    assert not promote and "does not beat the baseline" in reason


def test_candidate_must_beat_both_champion_and_baseline() -> None:
    assert _mase(0.7, 0.8)[0]
    promote, reason = _mase(0.85, 0.8)
    assert not promote and "does not beat the champion's 0.8000" in reason
    promote, reason = _mase(0.9, 1.2, baseline=0.85)  # better than a bad champion, worse than naive
    assert not promote and "baseline" in reason


def test_a_tie_goes_to_the_fresher_model_only() -> None:
    assert _mase(0.8, 0.8, fresher=True) == (
        True,
        "ties the champion's MASE 0.8000 on the same backtest and has newer data",
    )
    assert not _mase(0.8, 0.8, fresher=False)[0]
    assert not _mase(math.nan, 0.8)[0]


def test_higher_is_better_for_average_precision() -> None:
    d = decide(
        metric="average precision",
        candidate=0.9,
        baseline=0.8,
        champion=0.85,
        lower_is_better=False,
        candidate_is_fresher=False,
    )
    assert d.promote
    d = decide(
        metric="average precision",
        candidate=0.7,
        baseline=0.8,
        champion=None,
        lower_is_better=False,
        candidate_is_fresher=True,
    )
    assert not d.promote


def _unlabelled(weekly: float, agreement: float, champion: bool, fresher: bool) -> tuple[bool, str]:
    d = decide_unlabelled(
        max_weekly_rate=weekly,
        agreement=agreement,
        target=0.04,
        has_champion=champion,
        candidate_is_fresher=fresher,
    )
    return d.promote, d.reason


def test_unlabelled_rule_judges_the_held_out_window() -> None:
    # target 4 %: the weekly ceiling is 12 %, the agreement floor 20 % (hand-checked table).
    assert _unlabelled(0.05, 0.5, champion=False, fresher=True)[0]
    assert _unlabelled(0.0, 0.2, champion=False, fresher=True)[0]  # a quiet window is fine
    flood, reason = _unlabelled(0.13, 0.9, champion=False, fresher=True)
    assert not flood and "13.0 %" in reason and "12.0 %" in reason
    lonely, reason = _unlabelled(0.05, 0.1, champion=False, fresher=True)
    assert not lonely and "10 %" in reason
    assert not _unlabelled(float("nan"), 0.5, champion=False, fresher=True)[0]
    assert _unlabelled(0.05, 0.5, champion=True, fresher=True)[0]
    kept, reason = _unlabelled(0.05, 0.5, champion=True, fresher=False)
    assert not kept and "champion kept" in reason


def test_alerts_are_exactly_the_rows_at_or_above_the_threshold() -> None:
    window = pd.DataFrame(
        {
            "txn_id": [f"T{i}" for i in range(6)],
            "txn_at": pd.date_range("2026-06-24", periods=6, freq="D"),
            "local_at": pd.date_range(
                "2026-06-24 07:00", periods=6, freq="D", tz="Asia/Ho_Chi_Minh"
            ),
            "amount_vnd": [1e6] * 6,
            "counterparty": ["X"] * 6,
            "category": ["other"] * 6,
            "amount_log_ratio": [0.0] * 6,
            "amount_z": [0.0] * 6,
            "usual_amount_vnd": [1e6] * 6,
            "usual_is_counterparty": [True] * 6,
            "hour_rarity": [0.0] * 6,
            "hour_share": [0.5] * 6,
            "near_duplicate": [0.0] * 6,
            "hours_since_same": [np.nan] * 6,
            "new_counterparty": [0.0] * 6,
            "roundness": [0.0] * 6,
            "gap_z": [0.0] * 6,
        }
    )
    version = RegisteredVersion("smepulse-uc10-baseline", "3", "run", {})
    scores = np.array([0.1, 2.5, 0.3, 2.0, 1.99, 7.0])
    rows = alerts_frame(
        window, scores, 2.0, version=version, kind="robust_z", logical_date=dt.date(2026, 6, 30)
    )
    assert rows["txn_id"].tolist() == ["T5", "T1", "T3"]  # >= 2.0, highest first; no quota
    assert rows["anomaly_rank"].tolist() == [1, 2, 3]
    assert set(rows["model_name"]) == {"smepulse-uc10-baseline"}
    assert set(rows["model_version"]) == {"3"} and set(rows["model_kind"]) == {"robust_z"}
    quiet = alerts_frame(
        window, scores, 10.0, version=version, kind="robust_z", logical_date=dt.date(2026, 6, 30)
    )
    assert quiet.empty  # a quiet week has no alerts, not a forced share
