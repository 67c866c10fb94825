"""The promotion rule of validate-models and the alert-count rule of uc10-detect (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smepulse.ml.promotion import decide, decide_unlabelled
from smepulse.ml.uc10_detect import alert_count

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


def test_unlabelled_rule_keeps_the_champion_unless_it_drifted() -> None:
    assert decide_unlabelled(candidate_rate=0.04, champion_rate=None, target=0.04).promote
    assert not decide_unlabelled(candidate_rate=0.08, champion_rate=None, target=0.04).promote
    assert not decide_unlabelled(candidate_rate=0.04, champion_rate=0.045, target=0.04).promote
    drifted = decide_unlabelled(candidate_rate=0.04, champion_rate=0.09, target=0.04)
    assert drifted.promote and "drifted to 9.0 %" in drifted.reason


@pytest.mark.parametrize(
    ("passing", "expected"),
    [(40, 40), (5, 30), (100, 50), (0, 30)],  # n=1000, rate 4 %: held within 30..50
)
def test_alert_count_is_held_within_the_target_band(passing: int, expected: int) -> None:
    scores = np.linspace(1, 0, 1000)
    threshold = float(scores[passing - 1]) if passing else 2.0
    assert alert_count(scores, threshold, 0.04) == expected


def test_alert_count_small_and_empty_windows() -> None:
    assert alert_count(np.array([]), 0.5, 0.04) == 0
    assert alert_count(np.array([0.1, 0.2, 0.3]), 0.9, 0.04) == 1
