"""The one retry policy for network calls (tenacity): transient errors, exponential backoff.

Every caller that talks to a service over the network (webhook and SMTP notifications,
Metabase, the World Bank API) retries through :func:`call`: ``fn`` is called up to
``retries + 1`` times; only errors that ``transient`` accepts are retried; the delay before
retry *n* (1-based) is ``backoff_seconds * 2 ** (n - 1)``, unless ``delay_hint`` names one for
that error (a server's ``Retry-After``); the last error is re-raised unchanged, so the caller
keeps its own one-line message. Pipeline-level retries of whole stages are the catalog's, not
this module's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential

T = TypeVar("T")

#: ``on_retry(error, retry_number, retries, delay_seconds)``: called before each wait.
OnRetry = Callable[[BaseException, int, int, float], None]


def call(
    fn: Callable[[], T],
    *,
    retries: int,
    backoff_seconds: float,
    transient: Callable[[BaseException], bool],
    on_retry: OnRetry,
    delay_hint: Callable[[BaseException], float | None] = lambda exc: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()`` under the policy of the module docstring."""
    exponential = wait_exponential(multiplier=backoff_seconds, exp_base=2, min=0)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hinted = delay_hint(error) if error is not None else None
        return exponential(state) if hinted is None else hinted

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if error is not None:
            on_retry(error, state.attempt_number, retries, delay)

    retrying = Retrying(
        stop=stop_after_attempt(max(retries, 0) + 1),
        wait=wait,
        retry=retry_if_exception(transient),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn)
