"""Sales: AR invoices, their lines and the customers' payments.

Rules the data keeps (dbt tests check them downstream):
- line_amount = round(quantity x unit_price) - discount; an invoice's VAT is the sum over its
  lines of round(line_amount x the product's VAT rate); total = sum(line amounts) + VAT;
- due_date = issue_date + the customer's payment terms;
- payments of an invoice never exceed its total, nothing is dated after the end date, and a
  cancelled invoice has no payment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.bronze.contract import CHANNELS, PAYMENT_METHODS
from smepulse.synth.docs import instalments
from smepulse.synth.master import Master
from smepulse.synth.util import (
    DAY_S,
    I64,
    US,
    Rng,
    business_seconds,
    demand_weights,
    local_us,
)

BANK, CASH, CARD, EWALLET = (
    PAYMENT_METHODS.index(m) for m in ("bank_transfer", "cash", "card", "e_wallet")
)
RETAIL, WHOLESALE, ENTERPRISE = 0, 1, 2
PROMPT, USUALLY_LATE, CHRONIC, DEFAULTING = 0, 1, 2, 3


@dataclass(frozen=True)
class Sales:
    invoices: (
        pd.DataFrame
    )  # customer, day, created_us, due_day, channel, net, vat, total, cancelled_us
    lines: pd.DataFrame  # invoice, line_no, product, qty_milli, price, discount, amount
    payments: pd.DataFrame  # invoice, customer, day, us, amount, method, account


def _pick_customers(rng: Rng, customers: pd.DataFrame, created_us: I64) -> I64:
    """Weighted choice among the customers that already existed at each invoice's time."""
    order = np.argsort(customers["created_us"].to_numpy(), kind="stable")
    c_created = customers["created_us"].to_numpy()[order]
    cw = np.cumsum(customers["weight"].to_numpy()[order])
    eligible = np.maximum(np.searchsorted(c_created, created_us, side="right"), 1)
    u = rng.random(len(created_us)) * cw[eligible - 1]
    pos = np.minimum(np.searchsorted(cw, u, side="right"), eligible - 1)
    return np.asarray(order[pos], dtype=np.int64)


def _choice_by_group(rng: Rng, group: I64, table: dict[int, tuple[list[int], list[float]]]) -> I64:
    out = np.zeros(len(group), dtype=np.int64)
    for g, (values, p) in table.items():
        mask = group == g
        out[mask] = rng.choice(values, size=int(mask.sum()), p=p)
    return out


def _lines(rng: Rng, master: Master, seg: I64) -> pd.DataFrame:
    n_inv = len(seg)
    base = np.array([1, 2, 3])[seg]
    n_lines = np.minimum(
        base + rng.poisson(np.array([1.5, 3.0, 5.0])[seg]), np.array([8, 15, 25])[seg]
    )
    inv = np.repeat(np.arange(n_inv, dtype=np.int64), n_lines)
    starts = np.cumsum(n_lines) - n_lines
    line_no = np.arange(len(inv)) - starts[inv] + 1
    products = master.products
    active = np.flatnonzero(products["is_active"].to_numpy())
    pop = products["popularity"].to_numpy()[active]
    prod = active[rng.choice(len(active), size=len(inv), p=pop / pop.sum())]
    lseg = seg[inv]
    units = np.where(
        lseg == RETAIL,
        rng.geometric(0.22, size=len(inv)),
        np.maximum(1, np.rint(rng.lognormal(np.log(np.array([4.0, 12.0, 40.0])[lseg]), 0.6))),
    ).astype(np.int64)
    by_weight = products["by_weight"].to_numpy()[prod]
    kg_tenths = np.rint(units * rng.uniform(2.0, 10.0, size=len(inv)) * 10).astype(np.int64)
    qty_milli = np.where(by_weight, kg_tenths * 100, units * 1000)
    factor = np.array([1.0, 0.96, 0.93])[lseg]
    price = (np.rint(products["price"].to_numpy()[prod] * factor / 100) * 100).astype(np.int64)
    gross = (qty_milli * price + 500) // 1000
    has_discount = rng.random(len(inv)) < np.array([0.03, 0.2, 0.2])[lseg]
    discount = np.where(
        has_discount, np.floor(gross * rng.uniform(0.02, 0.06, size=len(inv)) / 1000) * 1000, 0
    ).astype(np.int64)
    amount = gross - discount
    vat = (amount * products["vat_bp"].to_numpy()[prod] + 5000) // 10000
    return pd.DataFrame(
        {
            "invoice": inv,
            "line_no": line_no,
            "product": prod,
            "qty_milli": qty_milli,
            "price": price,
            "discount": discount,
            "amount": amount,
            "vat": vat,
            "start": np.isin(np.arange(len(inv)), starts),
        }
    )


def _payments(rng: Rng, master: Master, inv: pd.DataFrame) -> pd.DataFrame:
    cust = inv["customer"].to_numpy()
    customers = master.customers
    seg = customers["segment"].to_numpy()[cust]
    terms = customers["terms"].to_numpy()[cust]
    profile = customers["profile"].to_numpy()[cust]
    day = inv["day"].to_numpy()
    defaulted = (profile == DEFAULTING) & (day >= customers["default_day"].to_numpy()[cust])
    profile = np.where((profile == DEFAULTING) & ~defaulted, CHRONIC, profile)
    payable = inv["cancelled_us"].to_numpy() < 0
    n = len(inv)
    k = _choice_by_group(
        rng,
        profile,
        {
            PROMPT: ([1, 2], [0.95, 0.05]),
            USUALLY_LATE: ([1, 2, 3], [0.75, 0.2, 0.05]),
            CHRONIC: ([1, 2, 3], [0.5, 0.35, 0.15]),
            DEFAULTING: ([0, 1, 2], [0.55, 0.35, 0.1]),
        },
    )
    k[~payable] = 0
    fraction = np.where(profile == DEFAULTING, rng.uniform(0.1, 0.6, size=n), 1.0)
    slip = np.where(rng.random(n) < 0.08, rng.integers(1, 11, size=n), 0)
    delay = np.select(
        [profile == PROMPT, profile == USUALLY_LATE, profile == CHRONIC],
        [
            np.rint(terms * rng.uniform(0.2, 1.0, size=n)) + slip * (terms > 0),
            terms + 3 + np.rint(rng.gamma(2.0, 6.0, size=n)),
            terms + 25 + np.rint(rng.gamma(2.0, 20.0, size=n)),
        ],
        terms + 30 + np.rint(rng.gamma(2.0, 25.0, size=n)),
    ).astype(np.int64)
    inst = instalments(rng, inv["total"].to_numpy(), k, fraction, day + delay, (7, 35))
    inst = inst[inst["day"] <= master.end_day].reset_index(drop=True)
    doc = inst["doc"].to_numpy()
    p_day = inst["day"].to_numpy()
    same_day_cash_sale = (terms[doc] == 0) & (seg[doc] == RETAIL)
    method = _choice_by_group(
        rng,
        np.where(same_day_cash_sale, 3, seg[doc]),
        {
            RETAIL: ([BANK, CASH, EWALLET], [0.6, 0.25, 0.15]),
            WHOLESALE: ([BANK, CASH, EWALLET], [0.88, 0.08, 0.04]),
            ENTERPRISE: ([BANK, CARD], [0.97, 0.03]),
            3: ([CASH, EWALLET, CARD, BANK], [0.45, 0.25, 0.15, 0.15]),
        },
    )
    m = len(doc)
    evening = np.where(method == BANK, 0.02, np.where(method == CASH, 0.1, 0.3))
    secs = business_seconds(rng, m, evening_share=0.0)
    late = rng.random(m) < evening
    secs[late] = rng.integers(18 * 3600, 22 * 3600, size=int(late.sum()))
    # A few e-wallet/card payments near midnight or early morning (normal, if rare).
    night = (method >= CARD) & (rng.random(m) < 0.01)
    night_hours = rng.choice([0, 5, 6, 7, 22, 23], size=int(night.sum()))
    secs[night] = night_hours * 3600 + rng.integers(0, 3600, size=int(night.sum()))
    us = local_us(p_day, secs)
    created = inv["created_us"].to_numpy()[doc]
    # A same-day payment is booked after its invoice, and stays on its payment date.
    bumped = np.maximum(us, created + rng.integers(60, 3600, size=m) * US)
    us = np.minimum(bumped, local_us(p_day, np.full(m, DAY_S - 1)))
    account = np.where(
        method == BANK, np.where(rng.random(m) < 0.75, 0, 1), np.where(method == CASH, -1, 1)
    )
    out = pd.DataFrame(
        {
            "invoice": doc,
            "customer": cust[doc],
            "day": p_day,
            "us": us,
            "amount": inst["amount"].to_numpy(),
            "method": method,
            "account": account,
        }
    )
    return out.sort_values(["us", "invoice"], kind="stable").reset_index(drop=True)


def make_sales(rng: Rng, master: Master, n_target: int) -> Sales:
    """About ``n_target`` invoices over the history, with lines and payments."""
    days = np.arange(master.start_day, master.end_day + 1, dtype=np.int64)
    w = demand_weights(days) * rng.lognormal(0.0, 0.1, size=len(days))
    counts = rng.poisson(n_target * w / w.sum())
    day = np.repeat(days, counts)
    n = len(day)
    created_us = local_us(day, business_seconds(rng, n, evening_share=0.03))
    created_us.sort()  # invoice numbers follow time
    day = (created_us // US + 7 * 3600) // DAY_S
    cust = _pick_customers(rng, master.customers, created_us)
    seg = master.customers["segment"].to_numpy()[cust]
    channel = _choice_by_group(
        rng,
        seg,
        {
            RETAIL: ([CHANNELS.index("store"), CHANNELS.index("online")], [0.7, 0.3]),
            WHOLESALE: ([CHANNELS.index("sales_rep"), CHANNELS.index("online")], [0.6, 0.4]),
            ENTERPRISE: ([CHANNELS.index("sales_rep"), CHANNELS.index("online")], [0.85, 0.15]),
        },
    )
    lines = _lines(rng, master, seg)
    starts = np.flatnonzero(lines["start"].to_numpy())
    net = np.add.reduceat(lines["amount"].to_numpy(), starts)
    vat = np.add.reduceat(lines["vat"].to_numpy(), starts)
    cancelled = rng.random(n) < 0.025
    end_us = local_us(np.array([master.end_day]), np.array([DAY_S - 1]))[0]
    cancel_us = np.minimum(created_us + rng.integers(1800, 5 * DAY_S, size=n) * US, end_us)
    invoices = pd.DataFrame(
        {
            "customer": cust,
            "day": day,
            "created_us": created_us,
            "due_day": day + master.customers["terms"].to_numpy()[cust],
            "channel": channel,
            "net": net,
            "vat": vat,
            "total": net + vat,
            "cancelled_us": np.where(cancelled & (cancel_us > created_us), cancel_us, -1),
        }
    )
    payments = _payments(rng, master, invoices)
    return Sales(invoices, lines.drop(columns=["vat", "start"]), payments)
