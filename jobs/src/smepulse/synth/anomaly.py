"""Planted anomalies in the bank feed, with their labels (kept out of bronze).

Every local week gets 3.4-4.4 % anomalous rows (of that week's rows, anomalies included):

- ``duplicate``: a second booking of a real transaction (same account, amount, counterparty,
  description, reference) 1-15 minutes after it;
- ``amount_outlier``: a transfer with a regular counterparty for 8-25x its median amount;
- ``unusual_hour``: a real transaction booked between 01:00 and 05:00 local time (normal
  traffic is 08:00-18:00 with some evenings and rare late-night card/e-wallet payments);
- ``round_new_counterparty``: a round 20-500 million VND transfer out to a counterparty never
  seen before (normal data also pays new vendors, in smaller and less round amounts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from smepulse.synth.bank import CAT, REF_NONE, Counterparties, Feed
from smepulse.synth.util import (
    I64,
    US,
    Rng,
    business_seconds,
    local_day,
    local_us,
    round_to,
)

ANOMALY_TYPES = ("duplicate", "amount_outlier", "unusual_hour", "round_new_counterparty")
DUP, OUTLIER, HOUR, ROUND_NEW = range(4)
_TYPE_P = [0.3, 0.3, 0.2, 0.2]
_OUTLIER_DESC = {
    CAT["sales_receipt"]: "CK thanh toan cong no",
    CAT["supplier_payment"]: "Thanh toan tien hang",
    CAT["utilities"]: "Thanh toan hoa don dich vu",
}
_ROUND_DESC = [
    "Chuyen tien",
    "Tam ung hop dong",
    "Chuyen khoan theo de nghi thanh toan",
    "Dat coc hop dong",
]


def week_of(day: I64) -> I64:
    """Monday-based week number of local dates (1970-01-05 was a Monday)."""
    return np.asarray((day - 4) // 7, dtype=np.int64)


def _pick_in_week(rng: Rng, pool: I64, pool_week: I64, weeks: I64) -> tuple[I64, np.ndarray]:
    """A random element of ``pool`` (sorted by week) in each requested week; ok=False if none."""
    lo = np.searchsorted(pool_week, weeks, side="left")
    hi = np.searchsorted(pool_week, weeks, side="right")
    ok = hi > lo
    pick = lo + np.floor(rng.random(len(weeks)) * (hi - lo)).astype(np.int64)
    return np.where(ok, pool[np.minimum(pick, max(len(pool) - 1, 0))], -1), ok


def plant(rng: Rng, feed: Feed, cps: Counterparties) -> tuple[pd.DataFrame, pa.Array, pd.DataFrame]:
    """Add anomalies to the normal feed.

    Returns all rows sorted by time (column ``anomaly``: type index or -1), the description
    array they address, and the labels frame (row position, anomaly type, local day).
    """
    normal = pd.concat(feed.parts, ignore_index=True)
    normal = normal.sort_values(["us", "desc_row"], kind="stable").reset_index(drop=True)
    descriptions = pa.concat_arrays(feed.descriptions)
    day = local_day(normal["us"].to_numpy())
    week = week_of(day)
    weeks, week_start, week_n = np.unique(week, return_index=True, return_counts=True)
    rate = rng.uniform(0.034, 0.044, size=len(weeks))
    n_anom = np.rint(rate * week_n / (1 - rate)).astype(np.int64)
    a_week = np.repeat(weeks, n_anom)
    a_type = rng.choice(4, size=len(a_week), p=_TYPE_P)
    # Any row can be duplicated or moved to the night; outliers need a regular counterparty.
    w_idx = np.searchsorted(weeks, a_week)
    base = week_start[w_idx] + np.floor(rng.random(len(a_week)) * week_n[w_idx]).astype(np.int64)
    abs_amount = normal["amount"].abs()
    cp_stats = abs_amount.groupby(normal["cp"]).agg(["median", "count"])
    cp_arr = normal["cp"].to_numpy()
    regular = cp_stats["count"].reindex(cp_arr).to_numpy() >= 5
    eligible = np.flatnonzero(np.isin(normal["category"].to_numpy(), list(_OUTLIER_DESC)) & regular)
    out_base, ok = _pick_in_week(rng, eligible, week[eligible], a_week)
    is_out = a_type == OUTLIER
    base = np.where(is_out & ok, out_base, base)
    a_type = np.where(is_out & ~ok, DUP, a_type)
    # A row is moved to the night at most once; extra picks of the same row become duplicates.
    hour = np.flatnonzero(a_type == HOUR)
    _, first = np.unique(base[hour], return_index=True)
    repeat = np.setdiff1d(np.arange(len(hour)), first)
    a_type[hour[repeat]] = DUP

    rows = normal.assign(anomaly=-1)
    hour = np.flatnonzero(a_type == HOUR)
    h_rows = base[hour]
    night = rng.integers(1 * 3600, 5 * 3600, size=len(hour))
    rows.loc[h_rows, "us"] = local_us(day[h_rows], night)
    rows.loc[h_rows, "anomaly"] = HOUR

    dup = np.flatnonzero(a_type == DUP)
    d = normal.iloc[base[dup]].copy()
    delta = rng.integers(60, 901, size=len(dup)) * US
    later = d["us"].to_numpy() + delta
    same_day = local_day(later) == day[base[dup]]
    d["us"] = np.where(same_day, later, d["us"].to_numpy() - delta)
    d["anomaly"] = DUP

    out = np.flatnonzero(a_type == OUTLIER)
    o = normal.iloc[base[out]].copy()
    median = cp_stats["median"].reindex(o["cp"].to_numpy()).to_numpy()
    o["amount"] = np.sign(o["amount"].to_numpy()) * round_to(
        median * rng.uniform(8, 25, size=len(out)), 1000
    )
    o["us"] = local_us(day[base[out]], business_seconds(rng, len(out)))
    o["ref_kind"], o["ref_no"], o["anomaly"] = REF_NONE, -1, OUTLIER
    o_desc = [_OUTLIER_DESC[c] for c in o["category"].to_numpy()]

    rn = np.flatnonzero(a_type == ROUND_NEW)
    millions = rng.choice([20, 30, 50, 80, 100, 120, 150, 200, 250, 300, 500], size=len(rn))
    r = pd.DataFrame(
        {
            "account": 0,
            "us": local_us(day[base[rn]], business_seconds(rng, len(rn), evening_share=0.1)),
            "amount": -millions * 1_000_000,
            "cp": cps.new_people_or_firms(rng, len(rn)),
            "category": CAT["other"],
            "ref_kind": REF_NONE,
            "ref_no": -1,
            "anomaly": ROUND_NEW,
        }
    )
    r_desc = [_ROUND_DESC[i] for i in rng.integers(0, len(_ROUND_DESC), size=len(rn))]
    extra_desc = pa.array(o_desc + r_desc, pa.string())
    o["desc_row"] = len(descriptions) + np.arange(len(out))
    r["desc_row"] = len(descriptions) + len(out) + np.arange(len(rn))
    descriptions = pa.concat_arrays([descriptions, extra_desc])

    allrows = pd.concat([rows, d, o, r], ignore_index=True)
    allrows = allrows.sort_values(["us", "desc_row", "anomaly"], kind="stable").reset_index(
        drop=True
    )
    labelled = np.flatnonzero(allrows["anomaly"].to_numpy() >= 0)
    labels = pd.DataFrame(
        {
            "row": labelled,
            "anomaly_type": np.array(ANOMALY_TYPES, dtype=object)[
                allrows["anomaly"].to_numpy()[labelled]
            ],
            "day": local_day(allrows["us"].to_numpy()[labelled]),
        }
    )
    return allrows, descriptions, labels
