"""The promotion rules of ``validate-models`` (pure functions; see that module's docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from smepulse.ml.uc10_models import ALERT_RATE_TOLERANCE


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


def decide_unlabelled(
    *, candidate_rate: float, champion_rate: float | None, target: float
) -> Decision:
    """UC10 without labels: the alert-rate rule of the module docstring (pure)."""
    low, high = target * (1 - ALERT_RATE_TOLERANCE), target * (1 + ALERT_RATE_TOLERANCE)
    band = f"{100 * low:.1f}–{100 * high:.1f} %"
    inside = low <= candidate_rate <= high
    if champion_rate is None:
        if inside:
            return Decision(
                True,
                f"first champion (no labels): alert rate {100 * candidate_rate:.1f} % within {band}",
            )
        return Decision(
            False, f"no labels and alert rate {100 * candidate_rate:.1f} % outside {band}"
        )
    if not low <= champion_rate <= high and inside:
        return Decision(
            True,
            f"no labels; champion's alert rate drifted to {100 * champion_rate:.1f} % (target {band}), "
            f"candidate's is {100 * candidate_rate:.1f} %",
        )
    return Decision(False, "no labels to show the new version is better; champion kept")
