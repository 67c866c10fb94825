"""The promotion rules of ``validate-models`` (pure functions; see that module's docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def _tie(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def decide(
    *,
    metric: str,
    candidate: float,
    baseline: float,
    champion: float | None,
    lower_is_better: bool,
    candidate_is_fresher: bool,
) -> Decision:
    """The promotion rule (pure). ``champion`` is None when there is no champion yet."""

    def better(a: float, b: float) -> bool:
        return (a < b if lower_is_better else a > b) and not _tie(a, b)

    if math.isnan(candidate):
        return Decision(False, f"candidate has no {metric} figure")
    if not better(candidate, baseline):
        return Decision(
            False, f"{metric} {candidate:.4f} does not beat the baseline's {baseline:.4f}"
        )
    if champion is None or math.isnan(champion):
        return Decision(
            True, f"first champion: {metric} {candidate:.4f} beats the baseline's {baseline:.4f}"
        )
    if better(candidate, champion):
        return Decision(
            True,
            f"{metric} {candidate:.4f} beats the champion's {champion:.4f} and the baseline's {baseline:.4f}",
        )
    if _tie(candidate, champion) and candidate_is_fresher:
        return Decision(
            True,
            f"ties the champion's {metric} {champion:.4f} on the same backtest and has newer data",
        )
    return Decision(False, f"{metric} {candidate:.4f} does not beat the champion's {champion:.4f}")


#: Unlabelled promotion: the holdout alert rate may not exceed this multiple of the target in any
#: week of the window (a detector that floods one week is not stable) ...
MAX_WEEKLY_RATE_FACTOR = 3.0
#: ... and at least this share of its top-k must also be among the baseline's top-k.
MIN_AGREEMENT = 0.2


def decide_unlabelled(
    *,
    max_weekly_rate: float,
    agreement: float,
    target: float,
    has_champion: bool,
    candidate_is_fresher: bool,
) -> Decision:
    """UC10 without labels (pure): judged on the recent window the candidate did not train on.

    ``max_weekly_rate`` is the highest weekly alert rate of the candidate fitted before that
    window; ``agreement`` the share of its top-k scores that the robust-z baseline also ranks in
    its top-k. Both must pass; then the candidate is promoted when there is no champion yet or it
    has seen newer data than the champion (profiles age). Otherwise the champion — or, with
    none, the registered baseline — keeps serving.
    """
    ceiling = MAX_WEEKLY_RATE_FACTOR * target
    if math.isnan(max_weekly_rate) or max_weekly_rate > ceiling:
        return Decision(
            False,
            f"no labels; unstable on the held-out window: a week with "
            f"{100 * max_weekly_rate:.1f} % alerts (ceiling {100 * ceiling:.1f} %)",
        )
    if math.isnan(agreement) or agreement < MIN_AGREEMENT:
        return Decision(
            False,
            f"no labels; on the held-out window only {100 * agreement:.0f} % of its top alerts "
            f"are among the baseline's (needs {100 * MIN_AGREEMENT:.0f} %)",
        )
    checks = (
        f"weekly alert rate ≤ {100 * max_weekly_rate:.1f} %, "
        f"{100 * agreement:.0f} % top-alert agreement with the baseline on the held-out window"
    )
    if not has_champion:
        return Decision(True, f"first champion (no labels): {checks}")
    if candidate_is_fresher:
        return Decision(True, f"no labels; newer data and {checks}")
    return Decision(False, "no labels and no newer data than the champion; champion kept")
