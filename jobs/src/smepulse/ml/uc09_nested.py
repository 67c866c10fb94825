"""Nested rolling-origin backtest of the whole UC09 selection procedure.

Cut-offs are one horizon apart and end one horizon before the last day: ``outer + inner`` of
them. Every candidate is fitted at every cut-off *with only the data up to it* (the book
model rebuilds the book as of the cut-off, see :mod:`smepulse.ml.uc09_book_data`) and scored
on the ``horizon`` days after it. Then, for each of the last ``outer`` cut-offs, the
selection procedure is replayed: the candidate with the lowest mean MASE on the ``inner``
cut-offs *before* it is chosen, and its score on that outer fold is what the procedure earns.
The figure logged for the registered model is the mean of those outer scores — an honest
estimate of "pick the best on recent folds, then forecast", not the minimum over candidates
on the folds used to pick (which is optimistically biased).

The model registered is the procedure's choice at the last day: lowest mean MASE on the last
``inner`` cut-offs. Each candidate's plain figures on the outer folds are reported beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smepulse.ml.backtest import ForecastScore, coverage, fold_cutoffs, mase, rmsse, smape

log = logging.getLogger(__name__)

# fit on the first n_train days of the daily frame, forecast `horizon` days after them
FitPredict = Callable[[int], pd.DataFrame]


@dataclass
class NestedResult:
    """Per-candidate fold scores, the replayed selections, and the choice at the last day."""

    horizon: int
    cutoffs: list[str]
    outer: int
    inner: int
    per_fold: dict[str, list[dict[str, float | str]]]
    selections: list[dict[str, float | str]]
    chosen: str
    seconds: dict[str, float] = field(default_factory=dict)

    def candidate_score(self, label: str) -> ForecastScore:
        """A candidate's plain figures on the outer folds."""
        rows = self.per_fold[label][-self.outer :]
        means = {
            m: float(np.mean([float(r[m]) for r in rows]))
            for m in ("mase", "rmsse", "smape", "coverage")
        }
        return ForecastScore(label=label, folds=rows, **means)

    def procedure_score(self) -> ForecastScore:
        """The selection procedure's figures (means over the outer folds of what it chose)."""
        means = {
            m: float(np.mean([float(s[m]) for s in self.selections]))
            for m in ("mase", "rmsse", "smape", "coverage")
        }
        return ForecastScore(label=f"selected({self.chosen})", folds=self.selections, **means)

    def as_document(self) -> dict[str, object]:
        return {
            "horizon_days": self.horizon,
            "cutoffs": self.cutoffs,
            "outer_folds": self.outer,
            "inner_folds": self.inner,
            "chosen": self.chosen,
            "procedure": vars(self.procedure_score()),
            "selections": self.selections,
            "candidates": {label: vars(self.candidate_score(label)) for label in self.per_fold},
            "seconds": self.seconds,
        }


def _score(
    actual: np.ndarray, train: np.ndarray, forecast: pd.DataFrame, cutoff: str
) -> dict[str, float | str]:
    yhat = forecast["yhat"].to_numpy(dtype=float)
    return {
        "cutoff": cutoff,
        "mase": mase(actual, yhat, train),
        "rmsse": rmsse(actual, yhat, train),
        "smape": smape(actual, yhat),
        "coverage": coverage(
            actual,
            forecast["yhat_lower"].to_numpy(dtype=float),
            forecast["yhat_upper"].to_numpy(dtype=float),
        ),
    }


def nested_backtest(
    daily: pd.DataFrame,
    candidates: dict[str, FitPredict],
    horizon: int,
    outer: int,
    inner: int,
    baseline: str | None = None,
) -> NestedResult:
    """Score every candidate at every cut-off, then replay the selection (module docstring).

    ``baseline`` (a key of ``candidates``) is scored but never selected.
    """
    if inner < 1 or outer < 1:
        raise ValueError("a nested backtest needs at least one inner and one outer fold")
    lengths = fold_cutoffs(len(daily), horizon, outer + inner)
    if len(lengths) < inner + 1:
        raise ValueError(
            f"a nested backtest with {inner} inner folds needs {inner + 1} cut-offs; "
            f"only {len(lengths)} fit in {len(daily)} days"
        )
    outer = len(lengths) - inner
    net = daily["net_vnd"].to_numpy(dtype=float)
    labels = [str(daily["cash_date"].iloc[n - 1]) for n in lengths]
    per_fold: dict[str, list[dict[str, float | str]]] = {}
    seconds: dict[str, float] = {}
    for label, fit_predict in candidates.items():
        start = time.perf_counter()
        per_fold[label] = [
            _score(net[n : n + horizon], net[:n], fit_predict(n), cutoff)
            for n, cutoff in zip(lengths, labels, strict=True)
        ]
        seconds[label] = time.perf_counter() - start
        log.info(
            "UC09 backtest %-22s MASE by fold %s (%.1fs)",
            label,
            " ".join(f"{float(r['mase']):.3f}" for r in per_fold[label]),
            seconds[label],
        )
    eligible = [label for label in candidates if label != baseline]
    if not eligible:
        raise ValueError("no UC09 candidate besides the baseline")

    def pick(before: int) -> str:
        """The candidate with the lowest mean MASE on the ``inner`` folds ending before ``before``."""
        window = range(before - inner, before)
        return min(
            eligible,
            key=lambda lb: float(np.mean([float(per_fold[lb][i]["mase"]) for i in window])),
        )

    selections = []
    for j in range(inner, len(lengths)):
        chosen = pick(j)
        selections.append({**per_fold[chosen][j], "chosen": chosen})
    return NestedResult(
        horizon=horizon,
        cutoffs=labels,
        outer=outer,
        inner=inner,
        per_fold=per_fold,
        selections=selections,
        chosen=pick(len(lengths)),
        seconds=seconds,
    )
