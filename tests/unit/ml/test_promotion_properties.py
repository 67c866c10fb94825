"""Properties of the promotion rule that hold whatever its figures (tests/unit/ml/test_promotion.py
holds the hand-checked cases)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from smepulse.ml.promotion import decide

pytestmark = pytest.mark.unit

GRID = [round(float(x), 3) for x in np.linspace(0.2, 1.6, 29)]


def _promotes(candidate: float, baseline: float, champion: float | None, *, lower: bool = True,
              fresher: bool = False) -> bool:  # fmt: skip
    return decide(
        metric="m",
        candidate=candidate,
        baseline=baseline,
        champion=champion,
        lower_is_better=lower,
        candidate_is_fresher=fresher,
    ).promote


@pytest.mark.parametrize("fresher", [False, True])
def test_promotion_is_monotone_in_the_candidates_error(fresher: bool) -> None:
    for baseline, champion in itertools.product(GRID[::4], [None, *GRID[::4]]):
        verdicts = [_promotes(c, baseline, champion, fresher=fresher) for c in GRID]
        # Once a candidate is not promoted, no candidate with a larger error is.
        first_no = verdicts.index(False) if False in verdicts else len(verdicts)
        assert not any(verdicts[first_no:]), (baseline, champion, verdicts)


def test_never_promoted_unless_better_than_the_baseline_and_not_worse_than_the_champion() -> None:
    for candidate, baseline, champion in itertools.product(GRID[::2], GRID[::3], GRID[::3]):
        if _promotes(candidate, baseline, champion, fresher=True):
            assert candidate < baseline and candidate <= champion


def test_higher_is_better_mirrors_lower_is_better() -> None:
    for candidate, baseline, champion in itertools.product(GRID[::2], GRID[::3], GRID[::3]):
        assert _promotes(candidate, baseline, champion) == _promotes(
            -candidate, -baseline, -champion, lower=False
        )
