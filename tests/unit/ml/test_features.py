"""UC10 feature engineering: leakage, the individual features, the cut-off and the reasons."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.features import FEATURE_COLUMNS, build_features, explain, feature_matrix
from tests.unit.ml.synthetic import transactions

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def txns() -> pd.DataFrame:
    frame, _ = transactions(days=60, per_day=20, seed=5)
    return frame


def _row(
    txn_id: str, local: str, amount: float, party: str, category: str = "supplier_payment"
) -> dict[str, object]:
    return {
        "txn_id": txn_id,
        "bank_account_id": "BA01",
        "txn_at": pd.Timestamp(local) - pd.Timedelta(hours=7),
        "amount_vnd": amount,
        "counterparty": party,
        "category": category,
        "description": "",
        "reference_id": None,
    }


def test_features_at_t_ignore_everything_after_t(txns: pd.DataFrame) -> None:
    cut = txns["txn_at"].sort_values().iloc[len(txns) // 2]
    full = build_features(txns).set_index("txn_id")
    before = txns["txn_at"] <= cut
    # Remove all later rows ...
    truncated = build_features(txns[before]).set_index("txn_id")
    # ... or change them beyond recognition (amounts x50, all at 03:00, one counterparty).
    altered = txns.copy()
    later = ~before
    altered.loc[later, "amount_vnd"] *= 50
    altered.loc[later, "counterparty"] = "Supplier 000"
    altered.loc[later, "txn_at"] = altered.loc[later, "txn_at"].dt.normalize() + pd.Timedelta(
        hours=20
    )
    changed = build_features(altered).set_index("txn_id")

    ids = truncated.index
    pd.testing.assert_frame_equal(full.loc[ids, FEATURE_COLUMNS], truncated[FEATURE_COLUMNS])
    pd.testing.assert_frame_equal(full.loc[ids, FEATURE_COLUMNS], changed.loc[ids, FEATURE_COLUMNS])
    # The test can fail: the alteration does change the later rows' features.
    later_ids = full.index.difference(ids)
    assert not full.loc[later_ids, FEATURE_COLUMNS].equals(changed.loc[later_ids, FEATURE_COLUMNS])


def test_cutoff_drops_transactions_after_the_local_business_date() -> None:
    frame = pd.DataFrame(
        [
            _row("A", "2026-06-30 23:30", -1_000_000, "X"),  # 16:30 UTC on the 30th
            _row("B", "2026-07-01 06:30", -1_000_000, "X"),  # 23:30 UTC on the 30th, local 1 July
        ]
    )
    out = build_features(frame, cutoff=dt.date(2026, 6, 30))
    assert out["txn_id"].tolist() == ["A"]


def test_profiles_single_out_duplicate_size_hour_and_new_round_payee() -> None:
    rows = [
        _row(f"N{i:02d}", f"2026-06-{1 + i:02d} 10:00", -(5_000_000 + 1_234 * i), "Landlord")
        for i in range(10)
    ]
    rows += [
        _row("DUP", "2026-06-10 10:05", -(5_000_000 + 1_234 * 9), "Landlord"),  # 5 min after N09
        _row("BIG", "2026-06-11 11:00", -60_000_000 - 4_321, "Landlord"),
        _row("NIGHT", "2026-06-12 02:14", -5_003_000, "Landlord"),
        _row("NEW", "2026-06-13 15:00", -200_000_000, "Nobody Seen Before"),
    ]
    out = build_features(pd.DataFrame(rows)).set_index("txn_id")
    # Duplicate: the same payment 5 minutes earlier; N05 never repeated (capped at 30 days).
    assert out.loc["DUP", "repeat_gap"] == pytest.approx(np.log1p(5 / 60))
    assert out.loc["N05", "repeat_gap"] == pytest.approx(np.log1p(24 * 30))
    # Daily payments (gap 24 h, no spread -> floor 0.5): 5 minutes is far below the usual gap.
    assert out.loc["DUP", "gap_z"] == pytest.approx((np.log1p(5 / 60) - np.log1p(24)) / 0.5)
    # Size: 12x the landlord's usual, upward only; a usual payment is not unusual.
    assert out.loc["BIG", "amount_log_ratio"] > np.log(10)
    assert out.loc["BIG", "amount_z"] >= 3
    assert out.loc["N05", "amount_z"] < 0.5
    # Hour: 12 earlier supplier payments, none at 02:00 -> share (0+1)/(12+24) vs 1/24.
    assert out.loc["NIGHT", "hour_rarity"] == pytest.approx(np.log(36 / 24))
    assert out.loc["NIGHT", "hour_share"] == 0
    # New payee, 8 trailing zeros where the category's usual is 0 (13 earlier, median 0).
    assert out.loc["NEW", "newness"] == 1 and out.loc["NEW", "roundness"] == 8
    assert out.loc["BIG", "newness"] == pytest.approx(1 / 12)  # 11 earlier with the landlord

    assert "12× this counterparty's usual" in explain(out.loc["BIG"])
    assert "possible duplicate" in explain(out.loc["DUP"]) and "5 min" in explain(out.loc["DUP"])
    assert "new counterparty, round amount (200,000,000 ₫)" in explain(out.loc["NEW"])
    assert explain(out.loc["N05"]) == "unusual combination of amount, time and counterparty"


def test_hour_profile_is_learned_per_category() -> None:
    # 60 payments at 10:00, then one at 03:00: share (0+1)/(60+24); explained in words.
    rows = [
        _row(f"D{i:02d}", f"2026-05-{1 + i % 28:02d} 10:{i:02d}", -(1_000_000 + 7 * i), f"S{i % 5}")
        for i in range(60)
    ]
    rows.append(_row("LATE", "2026-06-02 03:10", -1_000_123, "S1"))
    out = build_features(pd.DataFrame(rows)).set_index("txn_id")
    assert out.loc["LATE", "hour_rarity"] == pytest.approx(np.log(84 / 24))
    assert "at 03:10, an hour with 0.0 % of earlier supplier payments" in explain(out.loc["LATE"])


def test_feature_matrix_is_float_and_complete(txns: pd.DataFrame) -> None:
    matrix = feature_matrix(build_features(txns))
    assert list(matrix.columns) == FEATURE_COLUMNS
    assert all(dtype == np.float64 for dtype in matrix.dtypes)
    assert not matrix.isna().any().any()
