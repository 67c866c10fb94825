"""The nested backtest replays the selection: a hand-worked table of two candidates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.uc09_nested import nested_backtest

pytestmark = pytest.mark.unit
H = 5


def _daily(n: int) -> pd.DataFrame:
    net = np.arange(n, dtype=float) % 7  # weekly: lag-7 differences are 0, so the scale is 1
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return pd.DataFrame({"cash_date": days, "net_vnd": net, "inflow_vnd": net, "outflow_vnd": 0.0})


def test_the_procedures_figure_is_what_it_picked_not_the_best_candidate() -> None:
    daily = _daily(120)  # 6 cut-offs of 5 days: training lengths 90, 95, ..., 115
    net = daily["net_vnd"].to_numpy()

    def candidate(exact_on: set[int]) -> object:
        def fit_predict(n: int) -> pd.DataFrame:
            fold = (n - 90) // H
            actual = net[n : n + H]
            yhat = actual if fold in exact_on else actual + 10.0
            return pd.DataFrame({"yhat": yhat, "yhat_lower": yhat - 1, "yhat_upper": yhat + 1})

        return fit_predict

    result = nested_backtest(
        daily,
        {"A": candidate({0, 1, 2}), "B": candidate({3, 4, 5})},  # type: ignore[dict-item]
        horizon=H,
        outer=4,
        inner=2,
    )
    # Worked by hand: outer fold 2 picks on folds 0-1 -> A (exact, MASE 0); fold 3 on 1-2 -> A
    # (off by 10: MASE 10); fold 4 on 2-3 -> a tie, the first listed (A: 10); fold 5 on 3-4 -> B (0).
    assert [s["chosen"] for s in result.selections] == ["A", "A", "A", "B"]
    assert [s["mase"] for s in result.selections] == pytest.approx([0, 10, 10, 0])
    assert result.procedure_score().mase == pytest.approx(5.0)
    # the best single candidate on the outer folds looks better (2.5): that is the optimism the
    # nested figure removes
    assert result.candidate_score("B").mase == pytest.approx(2.5)
    assert result.candidate_score("A").mase == pytest.approx(7.5)
    assert result.chosen == "B"  # at the last day: folds 4-5
    assert result.procedure_score().coverage == pytest.approx(0.5)  # exact folds inside +-1


def test_the_baseline_is_scored_but_never_chosen() -> None:
    daily = _daily(110)

    def perfect(n: int) -> pd.DataFrame:
        y = daily["net_vnd"].to_numpy()[n : n + H]
        return pd.DataFrame({"yhat": y, "yhat_lower": y, "yhat_upper": y})

    def off(n: int) -> pd.DataFrame:
        return perfect(n) + 3.0

    result = nested_backtest(daily, {"naive": perfect, "model": off}, H, 2, 1, baseline="naive")
    assert result.chosen == "model" and {s["chosen"] for s in result.selections} == {"model"}
    assert result.candidate_score("naive").mase == pytest.approx(0.0)


def test_too_short_a_history_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="needs at least"):
        nested_backtest(_daily(60), {"a": lambda n: pd.DataFrame()}, H, 2, 1)
