"""The one retry policy (smepulse.retry): which errors are retried, and the waits in between."""

from __future__ import annotations

import pytest

from smepulse import retry

pytestmark = pytest.mark.unit


class Flaky(Exception):
    pass


def _calls(outcomes: list[BaseException | str]) -> tuple[object, list[int]]:
    """A function that raises or returns ``outcomes`` in turn, and a counter of its calls."""
    seen: list[int] = []

    def fn() -> str:
        seen.append(1)
        item = outcomes[len(seen) - 1]
        if isinstance(item, BaseException):
            raise item
        return item

    return fn, seen


def _run(fn: object, retries: int, backoff: float, **extra: object) -> tuple[object, list[float]]:
    waits: list[float] = []
    notes: list[tuple[str, int, int, float]] = []
    result = retry.call(
        fn,  # type: ignore[arg-type]
        retries=retries,
        backoff_seconds=backoff,
        transient=lambda exc: isinstance(exc, Flaky),
        on_retry=lambda exc, n, total, delay: notes.append((str(exc), n, total, delay)),
        sleep=waits.append,
        **extra,  # type: ignore[arg-type]
    )
    # Every wait is announced first, with the same figure.
    assert [n[3] for n in notes] == waits
    return result, waits


def test_transient_errors_are_retried_with_doubling_waits() -> None:
    fn, seen = _calls([Flaky("a"), Flaky("b"), Flaky("c"), "ok"])
    result, waits = _run(fn, retries=3, backoff=0.5)
    assert result == "ok" and len(seen) == 4
    assert waits == [0.5, 1.0, 2.0]  # 0.5 * 2**0, 0.5 * 2**1, 0.5 * 2**2


def test_the_last_error_is_raised_unchanged_after_the_retries() -> None:
    last = Flaky("third")
    fn, seen = _calls([Flaky("first"), Flaky("second"), last])
    with pytest.raises(Flaky) as info:
        _run(fn, retries=2, backoff=1.0)
    assert info.value is last and len(seen) == 3


def test_other_errors_fail_at_once() -> None:
    fn, seen = _calls([ValueError("HTTP 401"), "never"])
    with pytest.raises(ValueError, match="HTTP 401"):
        _run(fn, retries=5, backoff=1.0)
    assert len(seen) == 1


def test_no_retries_means_one_call() -> None:
    fn, seen = _calls([Flaky("down"), "never"])
    with pytest.raises(Flaky):
        _run(fn, retries=0, backoff=1.0)
    assert len(seen) == 1


def test_a_delay_hint_replaces_the_computed_wait() -> None:
    fn, _ = _calls([Flaky("429"), Flaky("503"), "ok"])
    result, waits = _run(
        fn,
        retries=2,
        backoff=1.0,
        delay_hint=lambda exc: 7.0 if str(exc) == "429" else None,
    )
    assert result == "ok" and waits == [7.0, 2.0]  # the hint, then 1.0 * 2**1
