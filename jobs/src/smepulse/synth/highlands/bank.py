"""The bank feed of the company's three accounts: one line per non-cash payment of the book
(receipts from customers, transfers to suppliers) plus the recurring flows of
``recurring``. Anomalies are planted afterwards by ``anomalies``."""

from __future__ import annotations

import pandas as pd

from smepulse.synth.highlands import recurring
from smepulse.synth.highlands.feed import OWN_BANK_NAME, REF_AP, REF_AR, Calendar, Feed
from smepulse.synth.highlands.master import Master
from smepulse.synth.highlands.purchases import Purchases
from smepulse.synth.highlands.sales import CARD, CASH_M, EWALLET, Sales
from smepulse.synth.util import Rng


def _book_lines(feed: Feed, m: Master, s: Sales, p: Purchases) -> None:
    """One bank line per non-cash AR payment (in) and AP payment (out), same amount, the
    payment id as reference."""
    pay = s.payments
    cust = pay["customer"].to_numpy()
    names = m.customers["name"].to_numpy()[cust]
    bank_names = m.customers["bank_name"].to_numpy()[cust]
    for i, (us, account, amount, method, inv) in enumerate(
        zip(pay["us"], pay["account"], pay["amount"], pay["method"], pay["invoice"], strict=True)
    ):
        if method == CASH_M:
            continue
        ref = f"INV-{int(inv) + 1:08d}"
        if method == EWALLET:
            desc = f"MOMO {bank_names[i]} thanh toan {ref}"
        elif method == CARD:
            desc = f"TT THE POS {ref}"
        else:
            desc = f"{bank_names[i]} CK thanh toan HD {ref}"
        feed.add_us(
            int(us), int(account), int(amount), str(names[i]), desc, "sales_receipt", (REF_AR, i)
        )
    ap = p.payments
    sup_names = m.suppliers["name"].to_numpy()[ap["supplier"].to_numpy()]
    for i, (us, account, amount, method, bill) in enumerate(
        zip(ap["us"], ap["account"], ap["amount"], ap["method"], ap["bill"], strict=True)
    ):
        if method == CASH_M:
            continue
        desc = f"{OWN_BANK_NAME} TT HD BILL-{int(bill) + 1:07d}"
        feed.add_us(
            int(us),
            int(account),
            -int(amount),
            str(sup_names[i]),
            desc,
            "supplier_payment",
            (REF_AP, i),
        )


def make_feed(
    rng: Rng,
    m: Master,
    book: tuple[Sales, Purchases],
    simulated: tuple[Sales, Purchases],
    scale: float,
) -> pd.DataFrame:
    """Every genuine bank line inside the history (columns of ``Feed``), unsorted: the
    ``book``'s payments, and taxes and cash deposits from everything ``simulated`` (the
    VAT paid in the first month is on sales of the month before)."""
    feed = Feed()
    cal = Calendar(m)
    _book_lines(feed, m, *book)
    recurring.payroll(feed, m, cal)
    recurring.taxes(rng, feed, m, *simulated, cal)
    recurring.premises_and_utilities(rng, feed, cal)
    recurring.loans(rng, feed, scale, cal)
    recurring.cash_and_sweeps(rng, feed, m, simulated[0], cal)
    return feed.frame()
