"""Supplier bills and the trader's own way of paying them.

Stock is bought weekly for the sales expected three to six weeks ahead, with extra stock
before the rains (March-April) and before the second application (July). Hauliers bill
monthly. Bills are paid in two payment runs a month, on the 10th and the 25th (the working
day before when those are closed): on the first run after the due date less three days in
normal months; in the cash-tight growing season (April-October) about half the bills slip
to the next run; before Tết the trader clears what falls due over the holiday on the last
run before the closure; bills over 1.5 billion VND are paid in two runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.bronze.contract import PAYMENT_METHODS
from smepulse.synth.highlands.calendar import (
    day_of,
    is_open,
    month_start,
    next_open,
    prev_open,
    ymd,
)
from smepulse.synth.highlands.master import AGRIBANK, VCB, Master
from smepulse.synth.highlands.sales import Sales, price_index, vat_bp
from smepulse.synth.util import I64, US, Rng, local_us, tet_offsets

TRANSFER, CASH_M = (PAYMENT_METHODS.index(m) for m in ("bank_transfer", "cash"))
#: Typical bill size per category (VND, before VAT).
BILL_SIZE = (450_000_000, 160_000_000, 90_000_000, 110_000_000, 90_000_000)
#: Stock build-up: months in which the trader buys ahead of the season.
STOCK_FACTOR = np.array([0.8, 1.05, 1.3, 1.3, 1.05, 1.0, 1.2, 1.05, 0.9, 0.85, 0.8, 0.8])
HAULAGE_SHARE = 0.012  # of net sales
SPLIT_ABOVE = 1_500_000_000


@dataclass(frozen=True)
class Purchases:
    bills: pd.DataFrame  # supplier, day, due_day, total, created_us, cancelled_us
    payments: pd.DataFrame  # bill, supplier, day, us, rec_us, amount, method, account


def _daily_cogs(m: Master, s: Sales, n_days: int) -> np.ndarray:
    """Cost of goods sold per category and day (rows: categories)."""
    lines = s.lines
    prod = lines["product"].to_numpy()
    day = s.invoices["day"].to_numpy()[lines["invoice"].to_numpy()]
    cat = m.products["category"].to_numpy()[prod]
    cost = m.products["cost"].to_numpy()[prod] * lines["qty_milli"].to_numpy() / 1000
    cost = cost * np.where(cat == 0, price_index(day), 1.0)
    out = np.zeros((5, n_days))
    np.add.at(out, (cat, day - m.sim_start_day), cost)
    return out


def payment_runs(first: int, last: int) -> I64:
    """The 10th and 25th of each month, moved to the working day before when closed."""
    years, months, _ = ymd(np.array([first, last]))
    runs = []
    y, mo = int(years[0]), int(months[0])
    while (y, mo) <= (int(years[1]), int(months[1])):
        runs += [day_of(y, mo, 10), day_of(y, mo, 25)]
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    all_days = np.arange(first - 30, last + 30, dtype=np.int64)
    return np.unique(prev_open(np.array(runs, dtype=np.int64), all_days[is_open(all_days)]))


def make_purchases(rng: Rng, m: Master, s: Sales) -> Purchases:
    n_days = m.end_day - m.sim_start_day + 1
    cogs = _daily_cogs(m, s, n_days + 60)
    sup = m.suppliers
    all_days = np.arange(m.sim_start_day - 10, m.end_day + 500, dtype=np.int64)
    open_days = all_days[is_open(all_days)]
    rows: list[tuple[int, int, int]] = []  # supplier, day, net
    for week in range(m.sim_start_day, m.end_day + 1, 7):
        month = int(ymd(np.array([week]))[1][0])
        w = week - m.sim_start_day
        for cat in range(5):
            value = cogs[cat, w + 7 : w + 42].sum() / 5 * STOCK_FACTOR[month - 1]
            value *= rng.uniform(0.78, 1.0)  # stock is drawn down as well as built
            if value < 0.3 * BILL_SIZE[cat]:
                continue
            k = max(1, int(rng.poisson(value / BILL_SIZE[cat])))
            cand = np.flatnonzero(sup["category"].to_numpy() == cat)
            share = sup["share"].to_numpy()[cand]
            for part in rng.dirichlet(np.full(k, 4.0)) * value:
                supplier = int(rng.choice(cand, p=share / share.sum()))
                day = int(next_open(np.array([week + rng.integers(0, 6)]), open_days)[0])
                rows.append((supplier, day, int(part)))
    hauliers = np.flatnonzero(sup["category"].to_numpy() == -1)
    net = s.invoices["total"].to_numpy() - s.invoices["vat"].to_numpy()
    inv_month = month_start(s.invoices["day"].to_numpy())
    for ms in np.unique(inv_month):
        last = int(
            prev_open(np.array([ms + 40 - int(ymd(np.array([ms + 40]))[2][0])]), open_days)[0]
        )
        if last > m.end_day:
            continue
        haul = float(net[inv_month == ms].sum()) * HAULAGE_SHARE
        for h, part in zip(hauliers, (2 / 3, 1 / 3), strict=False):
            rows.append((int(h), last, int(haul * part * rng.uniform(0.9, 1.1))))
    b = pd.DataFrame(rows, columns=["supplier", "day", "net"])
    b = b[(b["day"] >= m.sim_start_day) & (b["day"] <= m.end_day)]
    cat = sup["category"].to_numpy()[b["supplier"].to_numpy()]
    vat = np.array(
        [vat_bp(int(c), int(d)) if c >= 0 else 800 for c, d in zip(cat, b["day"], strict=True)]
    )
    b["total"] = np.round(b["net"].to_numpy() * (1 + vat / 10_000)).astype(np.int64)
    n = len(b)
    b["created_us"] = local_us(b["day"].to_numpy(), rng.integers(8 * 3600, 17 * 3600, size=n))
    b = b.sort_values("created_us", kind="stable").reset_index(drop=True)
    cancelled = b["created_us"].to_numpy() + rng.integers(1, 8, size=n) * 86_400 * US
    end_us = int(local_us(np.array([m.end_day]), np.array([16 * 3600]))[0])
    b["cancelled_us"] = np.where((rng.random(n) < 0.01) & (cancelled <= end_us), cancelled, -1)
    b["due_day"] = b["day"].to_numpy() + sup["terms"].to_numpy()[b["supplier"].to_numpy()]
    return Purchases(b, _pay(rng, m, b, open_days))


def _pay(rng: Rng, m: Master, b: pd.DataFrame, open_days: I64) -> pd.DataFrame:
    runs = payment_runs(m.sim_start_day, m.end_day + 400)
    rows: list[tuple[int, int, int, int]] = []  # bill, day, amount, method
    bills = zip(
        b["day"].to_numpy().tolist(),
        b["due_day"].to_numpy().tolist(),
        b["total"].to_numpy().tolist(),
        b["cancelled_us"].to_numpy().tolist(),
        strict=True,
    )
    for i, (issue, due, total, cancelled) in enumerate(bills):
        if cancelled >= 0:
            continue
        r = int(np.searchsorted(runs, max(due - 3, issue + 1)))
        month = int(ymd(runs[r : r + 1])[1][0])
        if 4 <= month <= 10 and rng.random() < 0.45:
            r += 1  # cash is tied up in stock and crop credit until the harvest
        off = int(tet_offsets(runs[r : r + 1])[0])
        if -20 <= off <= 20:  # clear the bills of the holiday before closing for Tết
            before = runs[(runs < runs[r] - off - 2) & (runs > issue)]
            if len(before):
                r = int(np.searchsorted(runs, before[-1]))
        if total > SPLIT_ABOVE:
            first = int(total * rng.uniform(0.4, 0.6) // 1_000_000 * 1_000_000)
            parts = [(r, first), (r + 1, total - first)]
        else:
            parts = [(r, total)]
        small = total < 15_000_000 and rng.random() < 0.5
        for run, amount in parts:
            rows.append((i, int(runs[run]), amount, CASH_M if small else TRANSFER))
    p = pd.DataFrame(rows, columns=["bill", "day", "amount", "method"])
    p = p[p["day"] <= m.end_day].reset_index(drop=True)
    n = len(p)
    p["supplier"] = b["supplier"].to_numpy()[p["bill"].to_numpy()]
    # The run is keyed into internet banking mid-morning, one transfer every few minutes.
    secs = 9 * 3600 + rng.integers(0, 150, size=n) * 60
    p["us"] = local_us(p["day"].to_numpy(), secs)
    p["rec_us"] = p["us"] + rng.integers(600, 7200, size=n) * US
    p["account"] = np.where(
        p["method"].to_numpy() == CASH_M, -1, np.where(rng.random(n) < 0.75, AGRIBANK, VCB)
    )
    return p.sort_values(["us", "bill"], kind="stable").reset_index(drop=True)
