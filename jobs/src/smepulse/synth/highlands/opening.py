"""The opening book: what of the burn-in year is still open when the history starts.

The business is simulated from ``BURN_IN_DAYS`` before the history. A document issued
before the history is kept only when nothing was paid on it before the first day (it is
open, or is cancelled later); documents settled, partly paid or cancelled before the
history are left out, like an accounting export that starts from the open items.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from smepulse.synth.highlands.purchases import Purchases
from smepulse.synth.highlands.sales import Sales
from smepulse.synth.util import US


def _kept(docs: pd.DataFrame, pay: pd.DataFrame, doc_col: str, start: int) -> np.ndarray:
    early_pay = np.zeros(len(docs), dtype=bool)
    early_pay[pay.loc[pay["day"] < start, doc_col].to_numpy()] = True
    cancelled = docs["cancelled_us"].to_numpy()
    cancel_day = (cancelled // US + 7 * 3600) // 86_400
    cancelled_before = (cancelled >= 0) & (cancel_day < start)
    return np.asarray(
        (docs["day"].to_numpy() >= start) | (~early_pay & ~cancelled_before), dtype=bool
    )


def _renumber(
    docs: pd.DataFrame, pay: pd.DataFrame, doc_col: str, keep: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    new_index = np.cumsum(keep) - 1
    kept_docs = docs[keep].reset_index(drop=True)
    kept_pay = pay[keep[pay[doc_col].to_numpy()]].copy()
    kept_pay[doc_col] = new_index[kept_pay[doc_col].to_numpy()]
    return kept_docs, kept_pay.reset_index(drop=True), new_index


def open_sales(s: Sales, start: int) -> Sales:
    keep = _kept(s.invoices, s.payments, "invoice", start)
    invoices, payments, new_index = _renumber(s.invoices, s.payments, "invoice", keep)
    lines = s.lines[keep[s.lines["invoice"].to_numpy()]].copy()
    lines["invoice"] = new_index[lines["invoice"].to_numpy()]
    return replace(s, invoices=invoices, lines=lines.reset_index(drop=True), payments=payments)


def open_purchases(p: Purchases, start: int) -> Purchases:
    keep = _kept(p.bills, p.payments, "bill", start)
    bills, payments, _ = _renumber(p.bills, p.payments, "bill", keep)
    return replace(p, bills=bills, payments=payments)
