"""Sales invoices, their lines and the customers' payments, following each customer's habit.

Invoices follow the farming calendar (agents stock up three weeks before farmers buy,
plantations order in a few large lots at application time). A few invoices are cancelled
days after issue and replaced by a corrected one (Vietnamese e-invoice practice). Payments
follow the customer's habit (``master.HABITS``); a payment the accountant enters days after
the money arrived keeps its real ``payment_date`` and a later ``updated_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.bronze.contract import CHANNELS, PAYMENT_METHODS
from smepulse.synth.highlands.calendar import (
    CATEGORY_MIX,
    day_of,
    farm_demand,
    is_open,
    next_open,
    tet_demand,
    ymd,
)
from smepulse.synth.highlands.master import (
    AGRIBANK,
    CASH,
    ENTERPRISE,
    FERTILISER,
    FERTILISER_VAT_BP_FROM_2025_07,
    HARVEST_PAY,
    LATE,
    PARTIAL,
    RETAIL,
    VAT_BP,
    VCB,
    WHOLESALE,
    Master,
)
from smepulse.synth.util import I64, US, Rng, local_us, to_date, weekday

STORE, ONLINE, SALES_REP = (CHANNELS.index(c) for c in ("store", "online", "sales_rep"))
TRANSFER, CASH_M, CARD, EWALLET = (
    PAYMENT_METHODS.index(m) for m in ("bank_transfer", "cash", "card", "e_wallet")
)
SEGMENT_SHARE = {RETAIL: 0.68, WHOLESALE: 0.27, ENTERPRISE: 0.05}
#: Quantity multiplier of a segment relative to a farmer's typical purchase.
SEGMENT_QTY = {RETAIL: 1.0, WHOLESALE: 14.0, ENTERPRISE: 28.0}
#: A farmer's typical quantity per product category (bags, bottles, seedlings, items).
TYPICAL_QTY = {
    "bao 50kg": 8.0,
    "chai": 4.0,
    "gói": 5.0,
    "Cây giống cà phê": 400.0,
    "Cây giống sầu riêng": 60.0,
    "Hom tiêu": 300.0,
    "Bao PP": 150.0,
    "Béc tưới": 30.0,
    "Máy bơm": 1.0,
}
VAT_CHANGE_DAY = day_of(2025, 7, 1)
#: Days from the customer's last purchase after a default to the credit hold.
CREDIT_HOLD_DAYS = 45


@dataclass(frozen=True)
class Sales:
    invoices: pd.DataFrame  # customer, day, due_day, channel, total, vat, created_us, cancelled_us
    lines: pd.DataFrame  # invoice, line_no, product, qty_milli, price, discount, amount
    payments: pd.DataFrame  # invoice, customer, day, us, rec_us, amount, method, account


def vat_bp(category: int, day: int) -> int:
    if category == FERTILISER and day >= VAT_CHANGE_DAY:
        return FERTILISER_VAT_BP_FROM_2025_07
    return VAT_BP[category]


def price_index(days: I64) -> np.ndarray:
    """Slow swings of world fertiliser prices (a deterministic cycle of about 18 months)."""
    return np.asarray(1 + 0.05 * np.sin(2 * np.pi * (days - 19_000) / 540.0))


def _typical(name: str) -> float:
    return next((q for k, q in TYPICAL_QTY.items() if k in name), 2.0)


def _invoice_days(rng: Rng, m: Master, segment: int, n: int) -> I64:
    days = np.arange(m.sim_start_day, m.end_day + 1, dtype=np.int64)
    lead = {RETAIL: 0, WHOLESALE: 21, ENTERPRISE: 10}[segment]
    w = farm_demand(days + lead) * tet_demand(days)
    if segment == ENTERPRISE:
        w = w**2
    w = w * np.where(weekday(days) == 5, 0.75, 1.0) * is_open(days)
    w = w * 1.08 ** ((days - m.sim_start_day) / 365.25)
    return np.sort(rng.choice(days, size=n, p=w / w.sum()))


def _pick_customers(rng: Rng, m: Master, segment: int, days: I64) -> tuple[I64, I64]:
    c = m.customers
    idx = np.flatnonzero(c["segment"].to_numpy() == segment)
    created = c["created_us"].to_numpy()[idx] // US // 86_400 + 1
    order = np.argsort(created, kind="stable")
    idx, created = idx[order], created[order]
    cum = np.cumsum(c["activity"].to_numpy()[idx])
    k = np.maximum(np.searchsorted(created, days, side="right"), 1)
    pick = np.minimum(np.searchsorted(cum, rng.random(len(days)) * cum[k - 1]), k - 1)
    return idx[pick], np.maximum(days, created[pick])


@dataclass(frozen=True)
class _Catalog:
    """Product columns as arrays, for the per-invoice loop."""

    category: I64
    popularity: np.ndarray
    price: I64
    typical: np.ndarray
    by_category: list[I64]

    @classmethod
    def of(cls, m: Master) -> _Catalog:
        p = m.products
        cat = p["category"].to_numpy()
        return cls(
            cat,
            p["popularity"].to_numpy(),
            p["price"].to_numpy(),
            np.array([_typical(str(n)) for n in p["name"]]),
            [np.flatnonzero(cat == k) for k in range(len(CATEGORY_MIX[0]))],
        )


def _all_lines(
    rng: Rng, cat_: _Catalog, segment: I64, month: I64, index: np.ndarray
) -> pd.DataFrame:
    """Lines of all invoices: columns invoice, line_no, product, qty_milli, price, discount."""
    max_lines = np.select([segment == RETAIL, segment == WHOLESALE], [3, 6], 3)
    n_lines = rng.integers(1, max_lines + 1)
    inv = np.repeat(np.arange(len(segment), dtype=np.int64), n_lines)
    mix = np.cumsum(CATEGORY_MIX, axis=1)[month[inv] - 1]
    cat = np.minimum((rng.random(len(inv))[:, None] > mix).sum(axis=1), mix.shape[1] - 1)
    prod = np.empty(len(inv), dtype=np.int64)
    for k, cand in enumerate(cat_.by_category):
        at = np.flatnonzero(cat == k)
        cum = np.cumsum(cat_.popularity[cand])
        prod[at] = cand[np.searchsorted(cum, rng.random(len(at)) * cum[-1])]
    # One line per product: a second draw of the same product on an invoice is dropped.
    first = ~pd.DataFrame({"i": inv, "p": prod}).duplicated().to_numpy()
    inv, prod, cat = inv[first], prod[first], cat[first]
    seg = segment[inv]
    mult = np.select(
        [seg == RETAIL, seg == WHOLESALE], [1.0, SEGMENT_QTY[WHOLESALE]], SEGMENT_QTY[ENTERPRISE]
    )
    qty = np.maximum(1, np.round(cat_.typical[prod] * mult * rng.lognormal(-0.15, 0.6, len(inv))))
    drift = np.where(cat == FERTILISER, index[inv], 1.0)
    price = np.round(cat_.price[prod] * drift * rng.normal(1, 0.01, len(inv)), -3)
    price = np.maximum(price, 1000).astype(np.int64)
    qty = qty.astype(np.int64)
    gross = qty * price
    volume = (seg != RETAIL) & (cat == FERTILISER)
    small = (seg == RETAIL) & (rng.random(len(inv)) < 0.08)
    discount = np.where(volume, np.round(gross * rng.uniform(0.015, 0.04, len(inv)), -3), 0)
    discount = np.where(
        small, np.minimum(gross // 10, rng.integers(1, 6, len(inv)) * 10_000), discount
    )
    line_no = np.arange(len(inv)) - np.searchsorted(inv, inv) + 1
    return pd.DataFrame(
        {
            "invoice": inv,
            "line_no": line_no,
            "product": prod,
            "qty_milli": qty * 1000,
            "price": price,
            "discount": discount.astype(np.int64),
            "amount": gross - discount.astype(np.int64),
            "category": cat,
        }
    )


def _channel(rng: Rng, segment: int) -> int:
    if segment == RETAIL:
        return STORE if rng.random() < 0.8 else ONLINE
    if segment == WHOLESALE:
        return SALES_REP if rng.random() < 0.7 else ONLINE
    return SALES_REP


def _harvest_day(issue: int, offset: float, rng: Rng) -> int:
    """When a farmer who bought on crop credit has coffee money: after the harvest."""
    date = to_date(issue)
    if date.month >= 11:  # harvest supplies: paid from this harvest
        return issue + int(rng.integers(20, 55))
    return day_of(date.year, 12, 1) + int(offset + rng.normal(0, 6))


def _split(rng: Rng, total: int, k: int) -> list[int]:
    """``total`` in ``k`` parts, all but the last rounded to 100,000 VND."""
    if k <= 1 or total < 500_000:
        return [total]
    shares = rng.dirichlet(np.full(k, 3.0))
    parts = [int(total * s // 100_000 * 100_000) for s in shares[:-1]]
    parts = [x for x in parts if x > 0]
    return [*parts, total - sum(parts)]


def _plan_payments(
    rng: Rng, cust: dict[str, float], segment: int, issue: int, due: int, total: int
) -> list[tuple[int, int]]:
    """(day, amount) of the payments an invoice will receive if time runs long enough."""
    habit = int(cust["habit"])
    if habit == CASH:
        if rng.random() < 0.92:
            return [(issue, total)]
        return [(issue + int(rng.integers(1, 15)), total)]
    if segment == RETAIL or habit == HARVEST_PAY:
        first = max(issue, _harvest_day(issue, cust["harvest_offset"], rng))
    elif habit == LATE:
        first = due + int(cust["delay_mean"] * rng.gamma(3.0) / 3.0)
    else:
        first = due + round(rng.normal(cust["delay_mean"], cust["delay_sd"]))
    first = max(issue, first)
    if habit == PARTIAL:
        k = int(rng.integers(2, 5))
        target = total if rng.random() < 0.65 else int(total * rng.uniform(0.5, 0.85))
        gaps = np.cumsum(np.concatenate([[0], rng.integers(10, 41, size=k - 1)]))
        return [(first + int(g), a) for g, a in zip(gaps, _split(rng, target, k), strict=False)]
    if habit == HARVEST_PAY and segment == WHOLESALE:
        k = int(rng.integers(1, 4))  # as its own farmers pay
    else:
        k = 2 if rng.random() < (0.3 if segment == RETAIL else 0.1) else 1
    parts = _split(rng, total, k)
    return [(first + i * int(rng.integers(15, 46)), a) for i, a in enumerate(parts)]


def _methods(rng: Rng, segment: I64, habit: I64) -> I64:
    """Payment methods: companies transfer; agents mostly transfer; farmers who buy for cash
    mostly pay cash at the counter, crop-credit farmers half cash, half transfer."""
    n = len(segment)
    u = rng.random(n)
    cash_buyer = np.select([u < 0.28, u < 0.90, u < 0.93], [TRANSFER, CASH_M, CARD], EWALLET)
    credit_farmer = np.select([u < 0.45, u < 0.90], [TRANSFER, CASH_M], EWALLET)
    farmer = np.where(habit == CASH, cash_buyer, credit_farmer)
    agent = np.where(u < 0.92, TRANSFER, CASH_M)
    return np.asarray(
        np.select([segment == ENTERPRISE, segment == WHOLESALE], [TRANSFER, agent], farmer),
        dtype=np.int64,
    )


def make_sales(rng: Rng, m: Master, n_invoices: int) -> Sales:
    c = m.customers
    inv_cust, inv_day = [], []
    for segment, share in SEGMENT_SHARE.items():
        days = _invoice_days(rng, m, segment, max(5, round(n_invoices * share)))
        cust, days = _pick_customers(rng, m, segment, days)
        inv_cust.append(cust)
        inv_day.append(days)
    cust_a = np.concatenate(inv_cust)
    day_a = np.concatenate(inv_day)
    # No more credit for a defaulter: the shop stops selling to it a while after the default.
    default = c["default_day"].to_numpy()[cust_a]
    keep = (default < 0) | (day_a <= default + CREDIT_HOLD_DAYS)
    cust_a, day_a = cust_a[keep], day_a[keep]
    secs = rng.integers(7 * 3600 + 1800, 17 * 3600 + 1800, size=len(day_a))
    created = local_us(day_a, secs)
    # Cancelled within days of issue and replaced by a corrected invoice.
    cancel_after = rng.integers(2 * 3600, 10 * 86_400, size=len(day_a)) * US
    cancelled = np.where(rng.random(len(day_a)) < 0.015, created + cancel_after, -1)
    end_us = int(local_us(np.array([m.end_day]), np.array([17 * 3600]))[0])
    cancelled[cancelled > end_us] = -1
    repl = np.flatnonzero(cancelled >= 0)
    cust_a = np.concatenate([cust_a, cust_a[repl]])
    created = np.concatenate([created, cancelled[repl] + 600 * US])
    cancelled = np.concatenate([cancelled, np.full(len(repl), -1)])
    order = np.argsort(created, kind="stable")  # invoice numbers follow issue time
    cust_a, created, cancelled = cust_a[order], created[order], cancelled[order]
    day_a = (created // US + 7 * 3600) // 86_400

    all_days = np.arange(m.sim_start_day - 5, m.end_day + 400, dtype=np.int64)
    open_days = all_days[is_open(all_days)]
    seg_a = c["segment"].to_numpy()[cust_a]
    terms = c["terms"].to_numpy()[cust_a]
    month_a = ymd(day_a)[1]
    index_a = price_index(day_a)
    catalog = _Catalog.of(m)
    habits = c[["habit", "harvest_offset", "delay_mean", "delay_sd", "default_day"]]
    cust_info: list[dict[str, float]] = [
        {str(k): float(v) for k, v in row.items()} for row in habits.to_dict("records")
    ]
    line_df = _all_lines(rng, catalog, seg_a, month_a, index_a)
    rate = np.where(
        (line_df["category"].to_numpy() == FERTILISER)
        & (day_a[line_df["invoice"].to_numpy()] >= VAT_CHANGE_DAY),
        FERTILISER_VAT_BP_FROM_2025_07,
        np.array([VAT_BP[k] for k in range(len(VAT_BP))])[line_df["category"].to_numpy()],
    )
    line_vat = np.round(line_df["amount"].to_numpy() * rate / 10_000).astype(np.int64)
    net = np.bincount(line_df["invoice"], weights=line_df["amount"], minlength=len(day_a))
    vat = np.bincount(line_df["invoice"], weights=line_vat, minlength=len(day_a))
    total = (net + vat).astype(np.int64)
    due = day_a + terms
    pays: list[tuple[int, int, int]] = []
    for i in np.flatnonzero(cancelled < 0):
        segment, day = int(seg_a[i]), int(day_a[i])
        info = cust_info[int(cust_a[i])]
        default_day = int(info["default_day"])
        for pay_day, amount in _plan_payments(rng, info, segment, day, int(due[i]), int(total[i])):
            if 0 <= default_day <= pay_day:
                continue
            pays.append((int(i), pay_day, amount))
    channel = [_channel(rng, int(x)) for x in seg_a]
    inv_rows = list(zip(day_a, due, channel, total, vat.astype(np.int64), strict=True))
    inv = pd.DataFrame(inv_rows, columns=["day", "due_day", "channel", "total", "vat"])
    inv["customer"] = cust_a
    inv["created_us"] = created
    inv["cancelled_us"] = cancelled
    return Sales(inv, line_df.drop(columns="category"), _payments(rng, m, inv, pays, open_days))


def _payments(
    rng: Rng, m: Master, inv: pd.DataFrame, pays: list[tuple[int, int, int]], open_days: I64
) -> pd.DataFrame:
    p = pd.DataFrame(pays, columns=["invoice", "day", "amount"])
    p["customer"] = inv["customer"].to_numpy()[p["invoice"].to_numpy()]
    seg = m.customers["segment"].to_numpy()[p["customer"].to_numpy()]
    habit = m.customers["habit"].to_numpy()[p["customer"].to_numpy()]
    method = _methods(rng, seg, habit)
    p["method"] = method
    day = p["day"].to_numpy()
    # Cash is paid at the shop and companies pay on working days; people transfer any day
    # but the Tết closure is quiet for everyone.
    shop = (method == CASH_M) | (seg == ENTERPRISE)
    day = np.where(shop | ~is_open(day) & (weekday(day) != 6), next_open(day, open_days), day)
    issue_us = inv["created_us"].to_numpy()[p["invoice"].to_numpy()]
    n = len(p)
    secs = np.where(
        shop,
        rng.integers(7 * 3600 + 1800, 17 * 3600, size=n),
        rng.integers(6 * 3600 + 1800, 21 * 3600 + 1800, size=n),
    )
    us = np.maximum(local_us(day, secs), issue_us + rng.integers(60, 1800, size=n) * US)
    day = (us // US + 7 * 3600) // 86_400
    late_entry = rng.random(n) < 0.06
    rec = us + rng.integers(120, 5 * 3600, size=n) * US
    rec = np.where(late_entry, rec + rng.integers(2, 10, size=n) * 86_400 * US, rec)
    end_us = int(local_us(np.array([m.end_day]), np.array([23 * 3600]))[0])
    p["day"] = day
    p["us"] = us
    p["rec_us"] = np.maximum(np.minimum(rec, end_us), us)
    is_cash = method == CASH_M
    bank = np.where(
        seg == RETAIL,
        np.where(rng.random(n) < 0.5, AGRIBANK, VCB),
        np.where(rng.random(n) < 0.25, AGRIBANK, VCB),
    )
    p["account"] = np.where(is_cash, -1, bank)
    p = p[p["day"] <= m.end_day].sort_values(["us", "invoice"], kind="stable")
    return p.reset_index(drop=True)
