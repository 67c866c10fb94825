"""Shared mechanics of documents (invoices, bills): instalment payments, the row versions a
document goes through (open -> partially_paid -> paid, or cancelled), and how versions land
in incremental exports (ingest dates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smepulse.bronze.contract import DOCUMENT_STATUSES
from smepulse.synth.util import F64, I64, Rng

OPEN, PAID, PARTIAL, CANCELLED = (
    DOCUMENT_STATUSES.index(s) for s in ("open", "paid", "partially_paid", "cancelled")
)


def instalments(
    rng: Rng,
    totals: I64,
    k: I64,
    pay_fraction: F64,
    first_day: I64,
    gap_days: tuple[int, int],
) -> pd.DataFrame:
    """Split each document's payable amount into ``k`` instalments.

    Document ``i`` receives ``k[i]`` payments (``k >= 0``) summing to exactly ``totals[i]``
    when ``pay_fraction[i] == 1``, else to a whole-thousand amount below the total. The first
    is on ``first_day[i]``, each later one ``gap_days`` (low, high) after the previous one.
    Returns columns ``doc, no, day, amount`` sorted by document then instalment.
    """
    n_docs = len(totals)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), k)
    if len(doc) == 0:
        return pd.DataFrame({"doc": doc, "no": doc, "day": doc, "amount": doc})
    starts = np.cumsum(k) - k
    no = np.arange(len(doc), dtype=np.int64) - starts[doc]
    target = np.where(
        pay_fraction >= 1.0,
        totals,
        np.minimum(np.floor(totals * pay_fraction / 1000) * 1000, totals - 1000),
    ).astype(np.int64)
    share = rng.gamma(3.0, size=len(doc))
    group_sum = np.add.reduceat(share, starts[k > 0])
    share_sum = np.zeros(n_docs)
    share_sum[k > 0] = group_sum
    raw = target[doc] * share / share_sum[doc]
    # People pay part-payments in round sums: whole millions, hundred-thousands, thousands.
    unit = np.where(raw >= 1e7, 1_000_000, np.where(raw >= 1e6, 100_000, 1000))
    amount = (np.floor(raw / unit) * unit).astype(np.int64)
    last = no == k[doc] - 1
    paid_before = np.zeros(n_docs, dtype=np.int64)
    np.add.at(paid_before, doc[~last], amount[~last])
    amount[last] = target[doc[last]] - paid_before[doc[last]]
    gaps = np.where(no > 0, rng.integers(gap_days[0], gap_days[1] + 1, size=len(doc)), 0)
    cum = np.cumsum(gaps)
    day = first_day[doc] + cum - cum[starts[doc]]
    out = pd.DataFrame({"doc": doc, "no": no, "day": day, "amount": amount})
    return out[out["amount"] > 0].reset_index(drop=True)


def document_versions(
    created_us: I64,
    totals: I64,
    cancelled_us: I64,
    pay_doc: I64,
    pay_us: I64,
    pay_amount: I64,
) -> pd.DataFrame:
    """Every state a document was in: columns ``doc, ts, status`` sorted by doc then time.

    A version at creation (open), one after each payment (partially_paid or paid, from the
    running paid sum), and one at cancellation (``cancelled_us >= 0``; such documents have no
    payments). ``ts`` becomes the version's ``updated_at``.
    """
    n = len(created_us)
    order = np.lexsort((pay_us, pay_doc))
    p_doc, p_us, p_amt = pay_doc[order], pay_us[order], pay_amount[order]
    running = pd.Series(p_amt).groupby(p_doc).cumsum().to_numpy()
    p_status = np.where(running >= totals[p_doc], PAID, PARTIAL)
    is_cancelled = cancelled_us >= 0
    c_doc = np.flatnonzero(is_cancelled)
    doc = np.concatenate([np.arange(n), p_doc, c_doc])
    ts = np.concatenate([created_us, p_us, cancelled_us[c_doc]])
    status = np.concatenate([np.full(n, OPEN), p_status, np.full(len(c_doc), CANCELLED)])
    kind = np.concatenate([np.zeros(n), np.ones(len(p_doc)), np.full(len(c_doc), 2)])
    order = np.lexsort((kind, ts, doc))
    return pd.DataFrame({"doc": doc[order], "ts": ts[order], "status": status[order]})


def ingest_index(event_day: I64, ingest_days: I64) -> I64:
    """The export an event lands in: the first ingest date on or after the event's date."""
    return np.asarray(np.searchsorted(ingest_days, event_day, side="left"), dtype=np.int64)


def newest_per_ingest(key: I64, ingest: I64) -> np.ndarray:
    """For rows sorted by key then time: True for each key's last row within each ingest.

    An incremental export holds each changed key once, in its state at export time.
    """
    if len(key) == 0:
        return np.zeros(0, dtype=bool)
    keep = np.ones(len(key), dtype=bool)
    keep[:-1] = (key[1:] != key[:-1]) | (ingest[1:] != ingest[:-1])
    return keep
