"""UC10 feature engineering for bank transactions — behaviour profiles, leak-free by construction.

Every feature of a transaction compares it with a *profile* built only from the transactions
before it, where "before" is the order (txn_at, txn_id). Profiles are taken over the previous
rows of a group (``shift(1)`` then a trailing window, or a running count), never over the whole
frame, so changing or removing later rows cannot change an earlier row's features
(``tests/unit/ml/test_features.py`` checks exactly that).

The features are chosen on principle, not around one data set's planted kinds: each one asks
"how unusual is this for *this* counterparty / category, judged by its own history?", with
robust statistics (median and IQR) so one earlier outlier does not move the profile. Two
profiles: the counterparty (in the same direction, in or out) and the category (same direction).
Nothing is a fixed business rule — no business hours, no amount size, no weekday is hard-coded;
the profiles learn them per business.

:data:`FEATURE_COLUMNS`:

* ``amount_z`` — log |amount| against the counterparty's last 30 amounts: (x − median) / spread
  (IQR/1.349, floored at a 25 % change), signed, clipped to ±20; with fewer than 3 earlier
  transactions the category profile stands in.
* ``category_amount_z`` — the same against the category's last 200 amounts.
* ``hour_rarity`` — −log of the smoothed share of the category's earlier transactions booked in
  the same local hour (1 of 24 buckets): high for an hour this kind of movement never happens.
* ``weekday_rarity`` — the same with the local weekday (7 buckets).
* ``newness`` — 1 / (1 + number of earlier transactions with the counterparty): 1 for a
  counterparty never seen, towards 0 for a regular one.
* ``gap_z`` — log of the hours since the counterparty's previous transaction against the log of
  its usual gap (median of the last 30), signed: very negative for a burst.
* ``repeat_gap`` — log(1 + hours since the same counterparty, direction and amount last
  occurred), capped at 30 days: a double booking minutes later is near 0.
* ``roundness`` — trailing zeros of the amount beyond the category's usual (median of the last
  200), ≥ 0: round sums where the category is usually exact.

Context columns for :func:`explain` (not model inputs): the usual amount, whose profile it was,
the hour's share, hours since the same payment.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

FEATURE_COLUMNS: list[str] = [
    "amount_z",
    "category_amount_z",
    "hour_rarity",
    "weekday_rarity",
    "newness",
    "gap_z",
    "repeat_gap",
    "roundness",
]
COUNTERPARTY_WINDOW = 30
CATEGORY_WINDOW = 200
MIN_HISTORY = 3
DUPLICATE_HOURS = 72.0
REPEAT_CAP_HOURS = 24.0 * 30
_MIN_SPREAD = float(np.log(1.25))  # a 25 % change is never "zero spread"
_Z_CLIP = 20.0


def _local_times(txn_at: pd.Series, timezone: str) -> pd.Series:
    ts = pd.to_datetime(txn_at)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert(timezone)


def _trailing_zeros(amount: pd.Series) -> pd.Series:
    values = amount.abs().round().astype("int64").to_numpy()
    zeros = np.zeros(len(values), dtype=np.int64)
    rest = values.copy()
    for _ in range(12):
        divisible = (rest % 10 == 0) & (rest > 0)
        zeros += divisible
        rest = np.where(divisible, rest // 10, rest)
    return pd.Series(zeros, index=amount.index)


def _prior_rolling(
    frame: pd.DataFrame, keys: list[str], column: str, window: int, q: float
) -> pd.Series:
    """Quantile ``q`` of ``column`` over each row's previous ``window`` rows of its group."""
    prior = frame.groupby(keys, sort=False)[column].shift(1)
    shifted = frame[keys].assign(_prior=prior)
    rolled = shifted.groupby(keys, sort=False)["_prior"].rolling(window, min_periods=1).quantile(q)
    return rolled.reset_index(level=list(range(len(keys))), drop=True).reindex(frame.index)


def _profile(
    frame: pd.DataFrame, keys: list[str], column: str, window: int
) -> tuple[pd.Series, pd.Series]:
    """Median and robust spread (IQR/1.349) of ``column`` over each row's earlier group rows."""
    median = _prior_rolling(frame, keys, column, window, 0.5)
    spread = (
        _prior_rolling(frame, keys, column, window, 0.75)
        - _prior_rolling(frame, keys, column, window, 0.25)
    ) / 1.349
    return median, spread


def _rarity(frame: pd.DataFrame, keys: list[str], bucket: str, buckets: int) -> pd.Series:
    """−log of the Laplace-smoothed share of a group's earlier rows that fell in this bucket."""
    seen = frame.groupby(keys, sort=False).cumcount().astype(float)
    same = frame.groupby([*keys, bucket], sort=False).cumcount().astype(float)
    share = (same + 1.0) / (seen + buckets)
    # A group's first rows know nothing yet: start from "every bucket equally likely".
    return pd.Series(-np.log(share) + np.log(1.0 / buckets), index=frame.index).clip(lower=0.0)


def order_transactions(transactions: pd.DataFrame) -> pd.DataFrame:
    """Sorted by (txn_at, txn_id) with a fresh index: the order "before" refers to."""
    return transactions.sort_values(["txn_at", "txn_id"], kind="mergesort").reset_index(drop=True)


def build_features(
    transactions: pd.DataFrame, timezone: str = "Asia/Ho_Chi_Minh", cutoff: dt.date | None = None
) -> pd.DataFrame:
    """Features for every transaction (ordered by txn_at, txn_id).

    ``transactions`` has the columns of ``silver.ml_training_uc10_transactions``. With
    ``cutoff``, transactions after that local business date are dropped first. The result keeps
    txn_id, txn_at, local_at, amount_vnd, counterparty and category, adds
    :data:`FEATURE_COLUMNS` and the context :func:`explain` needs.
    """
    frame = order_transactions(transactions)
    frame["local_at"] = _local_times(frame["txn_at"], timezone)
    if cutoff is not None:
        frame = frame[frame["local_at"].dt.date <= cutoff].reset_index(drop=True)
    amount = frame["amount_vnd"].astype(float)
    frame["amount_vnd"] = amount
    frame["direction"] = np.where(amount < 0, "out", "in")
    frame["counterparty"] = frame["counterparty"].fillna("(none)").astype(str)
    frame["category"] = frame["category"].fillna("other").astype(str)
    frame["_log"] = np.log(amount.abs() + 1.0)

    cp_keys, cat_keys = ["counterparty", "direction"], ["category", "direction"]
    history = frame.groupby(cp_keys, sort=False).cumcount()
    cp_median, cp_spread = _profile(frame, cp_keys, "_log", COUNTERPARTY_WINDOW)
    cat_median, cat_spread = _profile(frame, cat_keys, "_log", CATEGORY_WINDOW)

    known = history >= MIN_HISTORY
    usual = cp_median.where(known, cat_median)
    spread = cp_spread.where(known, cat_spread).fillna(_MIN_SPREAD).clip(lower=_MIN_SPREAD)
    # No history at all (the very first transactions of a category): nothing is unusual yet.
    ratio = (frame["_log"] - usual).fillna(0.0)
    frame["amount_log_ratio"] = ratio
    frame["amount_z"] = (ratio / spread).clip(0.0, _Z_CLIP)
    cat_ratio = (frame["_log"] - cat_median).fillna(0.0)
    cat_scale = cat_spread.fillna(_MIN_SPREAD).clip(lower=_MIN_SPREAD)
    frame["category_amount_z"] = (cat_ratio / cat_scale).clip(0.0, _Z_CLIP)
    frame["usual_amount_vnd"] = np.exp(usual) - 1.0
    frame["usual_is_counterparty"] = known

    local = frame["local_at"]
    frame["_hour"] = local.dt.hour
    frame["_weekday"] = local.dt.weekday
    frame["hour_rarity"] = _rarity(frame, cat_keys, "_hour", 24)
    frame["weekday_rarity"] = _rarity(frame, cat_keys, "_weekday", 7)
    seen = frame.groupby(cat_keys, sort=False).cumcount().astype(float)
    same_hour = frame.groupby([*cat_keys, "_hour"], sort=False).cumcount().astype(float)
    frame["hour_share"] = np.where(seen > 0, same_hour / seen.where(seen > 0, 1.0), np.nan)

    frame["newness"] = 1.0 / (1.0 + history.astype(float))
    frame["new_counterparty"] = (history == 0).astype(float)

    stamp = pd.to_datetime(frame["txn_at"])
    previous = frame.assign(_ts=stamp).groupby(cp_keys, sort=False)["_ts"].shift(1)
    frame["_gap"] = np.log1p((stamp - previous).dt.total_seconds() / 3600)
    gap_median, gap_spread = _profile(frame, cp_keys, "_gap", COUNTERPARTY_WINDOW)
    gap_known = history >= MIN_HISTORY
    gap_scale = gap_spread.fillna(1.0).clip(lower=0.5)
    frame["gap_z"] = (
        ((frame["_gap"] - gap_median) / gap_scale).where(gap_known, 0.0).fillna(0.0)
    ).clip(-_Z_CLIP, _Z_CLIP)

    same_payment = frame.groupby([*cp_keys, "amount_vnd"], sort=False)["txn_at"].shift(1)
    gap_hours = (stamp - pd.to_datetime(same_payment)).dt.total_seconds() / 3600
    frame["hours_since_same"] = gap_hours
    frame["near_duplicate"] = (gap_hours <= DUPLICATE_HOURS).astype(float)
    frame["repeat_gap"] = np.log1p(gap_hours.clip(upper=REPEAT_CAP_HOURS).fillna(REPEAT_CAP_HOURS))

    frame["round_zeros"] = _trailing_zeros(amount).astype(float)
    usual_zeros = _prior_rolling(frame, cat_keys, "round_zeros", CATEGORY_WINDOW, 0.5)
    frame["roundness"] = (frame["round_zeros"] - usual_zeros).fillna(0.0).clip(lower=0.0)

    keep = ["txn_id", "txn_at", "local_at", "amount_vnd", "counterparty", "category"]
    context = [
        "amount_log_ratio",
        "usual_amount_vnd",
        "usual_is_counterparty",
        "hour_share",
        "new_counterparty",
        "near_duplicate",
        "hours_since_same",
        "round_zeros",
    ]
    return frame[keep + FEATURE_COLUMNS + context]


def feature_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Only the model inputs, as float64 (what detectors and the MLflow signature see)."""
    return features[FEATURE_COLUMNS].astype("float64")


_CATEGORY_WORDS = {
    "sales_receipt": "sales receipts",
    "supplier_payment": "supplier payments",
    "other": "other payments",
}


def _vnd(value: float) -> str:
    return f"{value:,.0f} ₫"


def explain(row: pd.Series) -> str:
    """The reasons a transaction stands out, in words a bookkeeper understands.

    Reasons are listed strongest first; a transaction that is odd only in combination gets a
    general sentence rather than nothing.
    """
    reasons: list[tuple[float, str]] = []
    ratio = float(np.exp(row["amount_log_ratio"]))
    category = _CATEGORY_WORDS.get(str(row["category"]), str(row["category"]).replace("_", " "))
    whose = (
        "this counterparty's usual" if row["usual_is_counterparty"] else f"the usual for {category}"
    )
    if ratio >= 5 or (ratio >= 2 and row["amount_z"] >= 3):
        reasons.append(
            (
                max(float(row["amount_z"]), ratio / 2),
                f"amount {ratio:.0f}× {whose} ({_vnd(row['usual_amount_vnd'])})",
            )
        )
    elif ratio <= 0.2 and row["amount_z"] <= -3:
        reasons.append(
            (
                -float(row["amount_z"]) / 2,
                f"amount {1 / ratio:.0f}× below {whose} ({_vnd(row['usual_amount_vnd'])})",
            )
        )
    share = row["hour_share"]
    # Rare for this category (under 2 % of its earlier movements) and known well enough to say.
    if share == share and float(share) < 0.02 and row["hour_rarity"] >= 1.0:
        at = row["local_at"].strftime("%H:%M")
        reasons.append(
            (8.0, f"at {at}, an hour with {100 * float(share):.1f} % of earlier {category}")
        )
    if row["near_duplicate"]:
        hours = float(row["hours_since_same"])
        when = f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.0f} h"
        reasons.append(
            (9.0, f"same amount to the same counterparty {when} earlier (possible duplicate)")
        )
    if row["new_counterparty"] and row["roundness"] >= 2:
        reasons.append((7.0, f"new counterparty, round amount ({_vnd(abs(row['amount_vnd']))})"))
    elif row["new_counterparty"]:
        reasons.append((3.0, "first transaction with this counterparty"))
    elif row["roundness"] >= 3:
        reasons.append((2.0, f"unusually round amount ({_vnd(abs(row['amount_vnd']))})"))
    if row["gap_z"] <= -4 and not row["near_duplicate"]:
        reasons.append(
            (4.0, "much sooner after this counterparty's previous transaction than usual")
        )
    if not reasons:
        return "unusual combination of amount, time and counterparty"
    return "; ".join(text for _, text in sorted(reasons, key=lambda item: -item[0]))
