"""The UC09 oracle bound (benchmarks/bench_uc09_oracle.py) conditions each document's true
payment law on the book at the cut-off: checked on hand-built documents whose conditional
payment days are known by construction."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CUTOFF, HORIZON, PATHS = 10, 10, 2000


def _oracle() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_uc09_oracle", REPO / "benchmarks" / "bench_uc09_oracle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _draws(rows: list[tuple[int, int, int, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["doc", "draw", "day", "amount", "banked"])


def _paths(
    draws: pd.DataFrame, paid: list[tuple[int, int, float]], issue: list[int], totals: list[int]
) -> np.ndarray:
    return _oracle().conditioned_paths(
        draws,
        pd.DataFrame(paid, columns=["doc", "day", "amount"]),
        np.array(issue),
        np.array(totals, dtype=float),
        CUTOFF,
        HORIZON,
        PATHS,
        np.random.default_rng(1),
    )


def test_an_open_document_is_paid_only_by_the_draws_that_left_it_open() -> None:
    # 100 VND, paid whole on day 5 (draw 0) or day 15 (draw 1); still open at day 10: only
    # the day-15 draw is possible, so every path has 100 on horizon day 5.
    draws = _draws([(0, 0, 5, 100.0, True), (0, 1, 15, 100.0, True)])
    paths = _paths(draws, [], issue=[0], totals=[100])
    expected = np.zeros(HORIZON)
    expected[4] = 100.0
    assert np.allclose(paths, expected[None, :])


def test_paid_cancelled_and_cash_documents_add_nothing() -> None:
    draws = _draws(
        [
            (0, 0, 5, 100.0, True),  # paid in full on day 5 (below): settled
            (0, 1, 15, 100.0, True),
            (1, 0, 12, 80.0, True),  # cancelled (total 0)
            (1, 1, 12, 80.0, True),
            (2, 0, 13, 60.0, False),  # always paid in cash: never reaches the bank
            (2, 1, 14, 60.0, False),
        ]
    )
    paths = _paths(draws, [(0, 5, 100.0)], issue=[0, 0, 0], totals=[100, 0, 60])
    assert not paths.any()


def test_a_document_issued_after_the_cutoff_follows_its_unconditional_law() -> None:
    # issued on day 12 (inside the horizon): day 13 or day 20, one draw each
    draws = _draws([(0, 0, 13, 100.0, True), (0, 1, 20, 100.0, True)])
    paths = _paths(draws, [], issue=[12], totals=[100])
    assert np.allclose(paths.sum(axis=1), 100.0)
    share_day_13 = float(np.mean(paths[:, 2] == 100.0))
    assert 0.45 < share_day_13 < 0.55  # 2,000 fair coin flips
    assert set(np.flatnonzero(paths.sum(axis=0))) == {2, 9}


def test_a_partly_paid_document_settles_what_it_still_owes() -> None:
    # 100 VND in two instalments: (40 on day 4, 60 on day 14) or (70 on day 4, 30 on day 18)
    # or a single payment on day 16 (one payment by the cut-off: inconsistent, never used).
    # 50 was really paid on day 4, so 50 is owed: it comes on day 14 or on day 18.
    draws = _draws(
        [
            (0, 0, 4, 40.0, True),
            (0, 0, 14, 60.0, True),
            (0, 1, 4, 70.0, True),
            (0, 1, 18, 30.0, True),
            (0, 2, 16, 100.0, True),
        ]
    )
    paths = _paths(draws, [(0, 4, 50.0)], issue=[0], totals=[100])
    assert np.allclose(paths.sum(axis=1), 50.0)
    assert set(np.flatnonzero(paths.sum(axis=0))) == {3, 7}  # days 14 and 18
