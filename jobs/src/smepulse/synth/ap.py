"""Purchases: AP bills from suppliers and the SME's payments of them.

Purchases run about ten days ahead of sales (stock is bought before it is sold) and total
about 86 % of sales, so the SME's gross margin and cash flow look like a distributor's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.synth.docs import instalments
from smepulse.synth.master import Master
from smepulse.synth.sales import BANK, CASH, Sales
from smepulse.synth.util import (
    DAY_S,
    US,
    Rng,
    business_seconds,
    demand_weights,
    local_us,
    round_to,
    weekday,
)


@dataclass(frozen=True)
class Purchases:
    bills: pd.DataFrame  # supplier, day, created_us, due_day, total, cancelled_us
    payments: pd.DataFrame  # bill, supplier, day, us, amount, method, account


def make_purchases(rng: Rng, master: Master, sales: Sales, n_bills: int) -> Purchases:
    days = np.arange(master.start_day, master.end_day + 1, dtype=np.int64)
    w = demand_weights(days + 10) * np.where(weekday(days) == 6, 0.05, 1.0)
    counts = rng.poisson(n_bills * w / w.sum())
    day = np.repeat(days, counts)
    n = len(day)
    created_us = np.sort(local_us(day, business_seconds(rng, n)))
    suppliers = master.suppliers
    size = suppliers["size"].to_numpy()
    supplier = rng.choice(len(suppliers), size=n, p=size / size.sum())
    raw = size[supplier] * rng.lognormal(0.0, 0.7, size=n)
    inv = sales.invoices
    sales_total = float(inv.loc[inv["cancelled_us"] < 0, "total"].sum())
    total = round_to(raw * (0.86 * sales_total / raw.sum()), 1000)
    terms = suppliers["terms"].to_numpy()[supplier]
    cancelled = rng.random(n) < 0.01
    end_us = local_us(np.array([master.end_day]), np.array([DAY_S - 1]))[0]
    cancel_us = np.minimum(created_us + rng.integers(3600, 3 * DAY_S, size=n) * US, end_us)
    bills = pd.DataFrame(
        {
            "supplier": supplier,
            "day": day,
            "created_us": created_us,
            "due_day": day + terms,
            "total": total,
            "cancelled_us": np.where(cancelled & (cancel_us > created_us), cancel_us, -1),
        }
    )
    # The SME pays most bills on time, some late, a few very late; 12 % in two parts.
    k = np.where(rng.random(n) < 0.12, 2, 1)
    k[bills["cancelled_us"].to_numpy() >= 0] = 0
    u = rng.random(n)
    delay = np.where(
        u < 0.75,
        np.maximum(terms - rng.integers(0, 6, size=n), 0),
        np.where(
            u < 0.97, terms + rng.integers(1, 21, size=n), terms + rng.integers(20, 61, size=n)
        ),
    )
    inst = instalments(rng, total, k, np.ones(n), day + delay, (10, 30))
    inst = inst[inst["day"] <= master.end_day].reset_index(drop=True)
    doc = inst["doc"].to_numpy()
    m = len(doc)
    method = np.where(rng.random(m) < 0.96, BANK, CASH)
    p_day = inst["day"].to_numpy()
    us = local_us(p_day, business_seconds(rng, m))
    bumped = np.maximum(us, created_us[doc] + rng.integers(600, 7200, size=m) * US)
    us = np.minimum(bumped, local_us(p_day, np.full(m, DAY_S - 1)))
    account = np.where(method == CASH, -1, np.where(rng.random(m) < 0.8, 0, 2))
    payments = pd.DataFrame(
        {
            "bill": doc,
            "supplier": supplier[doc],
            "day": p_day,
            "us": us,
            "amount": inst["amount"].to_numpy(),
            "method": method,
            "account": account,
        }
    )
    payments = payments.sort_values(["us", "bill"], kind="stable").reset_index(drop=True)
    return Purchases(bills, payments)
