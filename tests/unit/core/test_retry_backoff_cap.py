"""Stage retries (the planner both executors share): the backoff doubles, then stops growing.

Issue #14 gap 9: an uncapped doubling from a catalog's or a PipelineRun's backoff reaches days
after a dozen failed attempts. The figures below are worked out by hand, not by the formula.
"""

from __future__ import annotations

import pytest

from smepulse.catalog import RetryPolicy
from smepulse.planner import StageState, after_failed_attempt

pytestmark = pytest.mark.unit

HOUR = 3600  # the cap (smepulse.catalog.MAX_BACKOFF_SECONDS)


def test_the_wait_before_each_retry_doubles_until_one_hour_then_stays_there() -> None:
    policy = RetryPolicy(limit=20, backoff_seconds=60)
    waits = [after_failed_attempt(policy, failed)[1] for failed in range(1, 21)]
    # 1 min, 2, 4, 8, 16, 32 min; the next doubling (64 min) is past the hour.
    assert waits[:6] == [60, 120, 240, 480, 960, 1920]
    assert waits[6:] == [HOUR] * 14
    # The 15th wait is an hour, not 60 * 2**14 s (more than eleven days).
    assert waits[14] == HOUR
    # The 21st attempt is past the limit: the stage fails, no wait.
    assert after_failed_attempt(policy, 21) == (StageState.FAILED, None)


def test_a_one_hour_backoff_never_waits_longer_than_an_hour() -> None:
    # The largest a PipelineRun may ask for (retries.limit 10, backoffSeconds 3600).
    policy = RetryPolicy(limit=10, backoff_seconds=HOUR)
    assert [after_failed_attempt(policy, n) for n in range(1, 11)] == [
        (StageState.RETRYING, HOUR)
    ] * 10
