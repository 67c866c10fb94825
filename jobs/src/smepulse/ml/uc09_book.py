"""UC09 from the book: expected bank cash flow day by day, with components an analyst can read.

At a cut-off ``c`` (the book as of ``c``, see :mod:`smepulse.ml.uc09_book_data`), the forecast
for day ``c + h`` is the sum of:

* ``collections_book`` — every receivable open at ``c`` (issued, not cancelled, owed > 0),
  spread over the coming days by its customer's learned *delay relative to the due date*,
  conditioned on not having been paid by ``c``. The delay distribution is the share of each
  invoice's amount that reached the bank ``k`` days after its due date, learned from invoices
  due 120–485 days before ``c`` (fully observed), per customer and shrunk towards the
  customer's segment (and the segment towards everyone) when a customer has few invoices.
  Mass that never reaches the bank (cash, write-offs, later than 120 days) stays missing, so
  an invoice's expected collection can be well below what it owes;
* ``collections_new`` — receipts from invoices issued after ``c``: for each weekday and
  horizon ``h``, the mean over the last 8 weeks of the bank receipts whose invoice was issued
  fewer than ``h`` days before payment (exactly the part of a future day's receipts the book
  at ``c`` cannot hold);
* ``payments_book`` / ``payments_new`` — the same for payables and the business's own
  paying habit (per supplier, shrunk towards all suppliers). A business that pays in runs
  (at least 70 % of the last year's supplier payments on a few days of the month, e.g. the
  10th and the 25th, see :func:`payment_run_days`) gets each open bill on a run instead: the
  share paid in the first run on or after the due date, the one before, the next ones, learned
  from past bills given where their due date fell between two runs;
* ``recurring_<category>`` — payroll, rent, tax, utilities: day-of-month events found in the
  last 12 months of the bank feed (a day that holds an event in at least half of the months;
  a weekend day the business never pays on moves the way past events moved), each valued at
  the mean of its last three occurrences;
* ``other_in`` / ``other_out`` — everything else the bank shows (unmatched receipts, one-off
  purchases, fees): the weekday median of the last 8 weeks;
* ``timing`` — the open documents' day totals are lumpy (a day holds a large bill or not), so
  their payment days are drawn at random many times and the forecast takes the median day
  total (what an absolute-error score rewards) instead of the mean: ``timing`` is median − mean.

Inflow and outflow are forecast separately and summed. Intervals are split-conformal: the
procedure is re-run at earlier cut-offs (every 7 days, ending one horizon before ``c``), and
the 80 % interval for horizon ``h`` is the forecast plus the empirical quantiles of the errors
at horizons ``h − 3 … h + 3`` (finite-sample corrected). Nothing after ``c`` is read.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from smepulse.ml.protocol import FloatArray, NotFittedError
from smepulse.ml.uc09_book_data import RECURRING_CATEGORIES, BookData, day_date

COMPONENTS = (
    "collections_book",
    "collections_new",
    "payments_book",
    "payments_new",
    *(f"recurring_{c}" for c in RECURRING_CATEGORIES),
    "other_in",
    "other_out",
    "timing",
)


@dataclass(frozen=True)
class BookConfig:
    """Tuning of the book model; logged as params."""

    horizon: int = 30
    level: float = 0.8
    settle_days: int = 120  # a document due longer ago than this is fully observed
    history_days: int = 365  # due dates learned from: c - settle - history .. c - settle
    early_days: int = 90  # earliest payment relative to due date that is modelled
    shrink: float = 10.0  # pseudo-invoices of the group prior in a party's habit
    recent_weeks: int = 8  # window of the weekday means
    calibration_cutoffs: int = 20
    simulations: int = 400  # draws of the open documents' payment days (0: mean forecast)
    calibration_step: int = 7
    pool: int = 3  # horizons h-pool..h+pool share their conformal errors
    symmetric: bool = True  # conformal intervals from |error| (see conformal_quantiles)
    run_share: float = 0.7  # supplier payments on run days needed to model payment runs

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


# ---------------------------------------------------------------- habits of paying / being paid


def _delay_habits(
    docs: pd.DataFrame,
    key: str,
    party: str,
    group: pd.Series,
    banked: pd.DataFrame,
    paid: pd.DataFrame,
    cutoff: int,
    cfg: BookConfig,
) -> tuple[dict[str, int], FloatArray, FloatArray]:
    """Per party: f[k] = share of the amount banked at delay k, g[k] = share paid (any way).

    Returns the party index and the two (parties × bins) arrays, bins = delay + early_days,
    delays clipped to [-early_days, settle_days]. Parties without history get their group's
    habit; with few documents, a mix (``shrink`` pseudo-documents of the group's habit).
    """
    n_bins = cfg.early_days + cfg.settle_days + 1
    hi, lo = cutoff - cfg.settle_days, cutoff - cfg.settle_days - cfg.history_days
    learn = docs[
        (docs["due_day"] > lo) & (docs["due_day"] <= hi) & (docs["cancelled_day"] > cutoff)
    ]
    parties = sorted(set(docs[party]))
    index = {p: i for i, p in enumerate(parties)}
    groups = sorted(set(group.reindex(parties).fillna("all")))
    g_index = {g: i for i, g in enumerate(groups)}
    party_group = np.array([g_index[str(group.get(p, "all"))] for p in parties], dtype=np.int64)

    def shrunk(
        amount: FloatArray, total: FloatArray, docs_n: FloatArray, prior: FloatArray
    ) -> FloatArray:
        """(amount + shrink mean-sized documents of the prior) / (total + same), per row."""
        pseudo = cfg.shrink * total / np.maximum(docs_n, 1.0)
        rate = (amount + pseudo[:, None] * prior) / np.maximum(total + pseudo, 1.0)[:, None]
        rate[total <= 0] = prior[total <= 0]
        return rate

    totals = (
        learn.groupby(party)["total"].sum().reindex(parties, fill_value=0.0).to_numpy(dtype=float)
    )
    sizes = learn.groupby(party).size().reindex(parties, fill_value=0)
    counts: FloatArray = sizes.to_numpy(dtype=np.float64).astype(np.float64)
    g_totals = np.bincount(party_group, weights=totals, minlength=len(groups)).astype(float)
    g_counts = np.bincount(party_group, weights=counts, minlength=len(groups)).astype(float)
    out = []
    for events in (banked, paid):
        merged = events.merge(learn[[key, party, "due_day"]], on=key)
        delay = np.clip(
            merged["day"].to_numpy(dtype=np.int64) - merged["due_day"].to_numpy(dtype=np.int64),
            -cfg.early_days,
            cfg.settle_days,
        )
        pid = merged[party].map(index).to_numpy(dtype=np.int64)
        per_party = np.zeros((len(parties), n_bins))
        np.add.at(per_party, (pid, delay + cfg.early_days), merged["amount"].to_numpy(dtype=float))
        per_group = np.zeros((len(groups), n_bins))
        np.add.at(per_group, party_group, per_party)
        everyone = per_party.sum(axis=0) / max(float(totals.sum()), 1.0)
        g_rate = shrunk(per_group, g_totals, g_counts, np.tile(everyone, (len(groups), 1)))
        prior: FloatArray = g_rate[party_group]
        out.append(shrunk(per_party, totals, counts, prior))
    return index, out[0], out[1]


def _expected_book(
    docs: pd.DataFrame,
    key: str,
    party: str,
    group: pd.Series,
    payments: pd.DataFrame,
    bank_links: pd.DataFrame,
    cutoff: int,
    cfg: BookConfig,
) -> tuple[FloatArray, pd.DataFrame, FloatArray, FloatArray]:
    """Expected bank amounts (positive) per future day from documents open at ``cutoff``.

    Returns the horizon array, a (party, h, amount, n_docs) frame for the explanations, and
    per open document its chance of reaching the bank on each day (documents × horizon) and
    what it owes (the inputs of :func:`_simulated_median`).
    """
    horizon = cfg.horizon
    index, f, g = _delay_habits(
        docs,
        key,
        party,
        group,
        bank_links.rename(columns={"cash_day": "day"}),
        payments.rename(columns={"pay_day": "day"}),
        cutoff,
        cfg,
    )
    live = docs[docs["cancelled_day"] > cutoff]
    paid = payments.groupby(key)["amount"].sum()
    owed = live["total"].to_numpy() - live[key].map(paid).fillna(0.0).to_numpy()
    open_docs = live[owed > 0.5].assign(owed=owed[owed > 0.5])
    if open_docs.empty:
        empty = pd.DataFrame(columns=[party, "h", "amount", "n_docs"])
        return np.zeros(horizon), empty, np.zeros((0, horizon)), np.zeros(0)
    pid = open_docs[party].map(index).to_numpy(dtype=np.int64)
    elapsed = cutoff - open_docs["due_day"].to_numpy()
    g_cum = np.cumsum(g, axis=1)
    e_bin = elapsed + cfg.early_days
    paid_before = np.where(e_bin < 0, 0.0, g_cum[pid, np.clip(e_bin, 0, g.shape[1] - 1)])
    survive = np.clip(1.0 - paid_before, 0.05, 1.0)
    bins = e_bin[:, None] + np.arange(1, horizon + 1)[None, :]
    valid = (bins >= 0) & (bins < f.shape[1])
    share = (
        np.where(valid, f[pid[:, None], np.clip(bins, 0, f.shape[1] - 1)], 0.0) / survive[:, None]
    )
    # never expect more than is owed
    share *= np.minimum(1.0, 1.0 / np.maximum(share.sum(axis=1), 1e-12))[:, None]
    amounts = share * open_docs["owed"].to_numpy()[:, None]
    return (
        amounts.sum(axis=0),
        _per_party(amounts, open_docs, party),
        share,
        open_docs["owed"].to_numpy(dtype=float),
    )


def _per_party(amounts: np.ndarray, open_docs: pd.DataFrame, party: str) -> pd.DataFrame:
    """Expected amounts (documents x horizon days) summed per party, in long form:
    party, h (1-based day of the horizon), amount, n_docs (the party's open documents)."""
    per_party = pd.DataFrame(amounts).groupby(open_docs[party].to_numpy()).sum()
    n_docs = open_docs.groupby(party).size()
    long = per_party.stack().reset_index()
    long.columns = pd.Index([party, "h", "amount"])
    long["h"] = long["h"].astype(int) + 1
    long["n_docs"] = long[party].map(n_docs).astype(int)
    return long


def _new_documents(
    links: pd.DataFrame, docs: pd.DataFrame, key: str, cutoff: int, cfg: BookConfig
) -> FloatArray:
    """Weekday mean, over recent weeks, of amounts paid < h days after the document's issue."""
    start = cutoff - 7 * cfg.recent_weeks
    recent = links[(links["cash_day"] > start)].merge(docs[[key, "issue_day"]], on=key)
    paid_day = recent["cash_day"].to_numpy(dtype=np.int64)
    lag = np.clip(paid_day - recent["issue_day"].to_numpy(dtype=np.int64), 0, cfg.horizon)
    table = np.zeros((7, cfg.horizon + 1))
    np.add.at(table, (_weekday(paid_day), lag), recent["amount"].to_numpy(dtype=float))
    by_h = np.cumsum(table, axis=1)[:, : cfg.horizon] / cfg.recent_weeks  # [:, h-1] = lag < h
    days = cutoff + np.arange(1, cfg.horizon + 1)
    out: FloatArray = by_h[_weekday(days), np.arange(cfg.horizon)]
    return out


def _simulated_median(
    chances: FloatArray, amounts: FloatArray, draws: int, seed: int
) -> tuple[FloatArray, FloatArray]:
    """Median and mean, per day, of the summed document amounts under random payment days.

    ``chances`` is (documents × days): the chance that the whole (signed) ``amount`` of a
    document reaches the bank on that day (a row may sum to less than 1: the rest falls after
    the horizon or never). Each draw picks one day (or none) per document independently. A day
    total made of a few large documents is skewed, and its median — what an absolute-error
    score rewards — is not its mean.
    """
    n_docs, days = chances.shape
    if n_docs == 0 or draws <= 0:
        zero = np.zeros(days)
        return zero, zero.copy()
    cum = np.cumsum(chances, axis=1)
    u = np.random.default_rng(seed).random((draws, n_docs))
    # day index of each draw: the number of days whose cumulative chance is <= u (days = none),
    # found by one search in the documents' cumulative chances laid end to end, document i
    # shifted by 2 i (each row lies in [0, 1], so rows never interleave)
    shift = 2.0 * np.arange(n_docs)
    flat = (cum + shift[:, None]).ravel()
    pick = np.searchsorted(flat, u + shift[None, :], side="right") - days * np.arange(n_docs)
    totals = np.zeros((draws, days + 1))
    rows = np.repeat(np.arange(draws), n_docs)
    np.add.at(totals, (rows, pick.ravel()), np.tile(amounts, draws))
    sums = totals[:, :days]
    return np.median(sums, axis=0), sums.mean(axis=0)


# ---------------------------------------------------------------- the business's payment runs


def _month_days(days: np.ndarray, dom: int) -> np.ndarray:
    """For each day's month, the day number of day-of-month ``dom`` (clipped to month end)."""
    month = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    first = month.astype("datetime64[D]").astype(np.int64)
    last = (month + 1).astype("datetime64[D]").astype(np.int64) - 1
    return np.minimum(first + dom - 1, last)


def payment_run_days(
    paid: pd.DataFrame, cutoff: int, first: int, horizon: int, min_share: float
) -> np.ndarray | None:
    """The days the business pays its suppliers on, if it pays in runs; None if it does not.

    ``paid``: cash_day, amount of the business's supplier payments up to ``cutoff``. Weekdays
    with under 2 % of the last year's amount are closed. A payment of the last year counts
    towards day-of-month ``m`` when made on that day, or — when ``m`` fell on a closed weekday —
    on the last paying day up to 3 days before it (a run moved forward). Days of month
    carrying at least 10 % of the amount are run days if together they carry ``min_share`` of
    it. Returns the run days from ``first`` to ``horizon`` days after ``cutoff``: in the past
    the day within 3 days up to each nominal day with the most paid (a run moved before a
    holiday is found too), in the future the nominal day moved before closed weekdays.
    """
    recent = paid[paid["cash_day"] > cutoff - 365]
    if recent.empty:
        return None
    days = recent["cash_day"].to_numpy(dtype=np.int64)
    amount = recent["amount"].to_numpy(dtype=float)
    total = float(amount.sum())
    by_weekday = np.bincount(_weekday(days), weights=amount, minlength=7) / total
    closed = {w for w in range(7) if by_weekday[w] < 0.02}
    paying = np.unique(days)
    share = {}
    for m in range(1, 29):
        nominal = _month_days(days, m)
        pos = np.searchsorted(paying, nominal, side="right") - 1
        last_paying = paying[np.maximum(pos, 0)]
        nominal_closed = np.isin(_weekday(nominal), list(closed))
        counts = (days == nominal) | (
            nominal_closed & (days == last_paying) & (nominal - days <= 3) & (pos >= 0)
        )
        share[m] = float(amount[counts].sum()) / total
    chosen: list[int] = []
    for m in sorted(share, key=lambda k: -share[k]):
        if share[m] >= 0.10 and all(abs(m - k) > 3 for k in chosen):
            chosen.append(m)
    if sum(share[m] for m in chosen) < min_share:
        return None
    per_day = paid.groupby("cash_day")["amount"].sum()
    span = np.arange(first, cutoff + horizon + 40, dtype=np.int64)
    runs = []
    for m in chosen:
        for nom in np.unique(_month_days(span, m)):
            day = int(nom)
            if nom <= cutoff:
                near = per_day[(per_day.index >= nom - 3) & (per_day.index <= nom)]
                if not near.empty:
                    runs.append(int(near.idxmax()))
                    continue
            while int(_weekday(np.array([day]))[0]) in closed and day > cutoff + 1:
                day -= 1
            runs.append(day)
    return np.unique(np.array(runs, dtype=np.int64))


def _run_book(
    docs: pd.DataFrame,
    key: str,
    party: str,
    payments: pd.DataFrame,
    bank_links: pd.DataFrame,
    runs: np.ndarray,
    cutoff: int,
    cfg: BookConfig,
) -> tuple[FloatArray, pd.DataFrame, FloatArray, FloatArray]:
    """Like :func:`_expected_book`, for a business that pays in runs (``runs``: run days).

    A document due on day d is first "reachable" by run r0 = the first run on or after d; it
    is paid in run r0 + k. The share of the amount banked at each k (−2 … 8) is learned from
    the documents of the learning window, given how many days d falls after the run before
    r0 (the same share for all suppliers). Runs already past at ``cutoff`` are conditioned
    away (the document was still open).
    """
    horizon, k_lo, k_hi = cfg.horizon, -2, 8
    n_k = k_hi - k_lo + 1
    hi, lo = cutoff - cfg.settle_days, cutoff - cfg.settle_days - cfg.history_days
    learn = docs[
        (docs["due_day"] > lo) & (docs["due_day"] <= hi) & (docs["cancelled_day"] > cutoff)
    ]

    def position(due: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r0 = np.searchsorted(runs, due, side="left")
        prev = runs[np.clip(r0 - 1, 0, len(runs) - 1)]
        gap = np.clip(due - prev, 0, 31)
        return r0, gap

    table = np.zeros((32, n_k))
    docs_total = np.zeros(32)
    l_r0, l_gap = position(learn["due_day"].to_numpy(dtype=np.int64))
    np.add.at(docs_total, l_gap, learn["total"].to_numpy(dtype=float))
    merged = bank_links.merge(learn[[key, "due_day"]].assign(r0=l_r0, gap=l_gap), on=key)
    run_of_pay = np.searchsorted(runs, merged["cash_day"].to_numpy(dtype=np.int64), side="left")
    k = np.clip(run_of_pay - merged["r0"].to_numpy(dtype=np.int64), k_lo, k_hi) - k_lo
    np.add.at(table, (merged["gap"].to_numpy(dtype=np.int64), k), merged["amount"].to_numpy())
    pooled = table.sum(axis=0) / max(float(docs_total.sum()), 1.0)
    n_gap = np.maximum(docs_total, 1.0)
    denom = docs_total + cfg.shrink * docs_total.sum() / max(len(learn), 1)
    # No document fell due in the learning window (a small business's bills, some folds): no
    # evidence per gap, and the pooled rate (zeros) stands; 0/0 here was NaN, which broke the
    # simulation's search (an IndexError on the real node at scale 0.05).
    weight = np.divide(docs_total, denom, out=np.zeros_like(docs_total), where=denom > 0)
    rate = weight[:, None] * table / n_gap[:, None] + (1 - weight[:, None]) * pooled[None, :]

    live = docs[docs["cancelled_day"] > cutoff]
    paid = payments.groupby(key)["amount"].sum()
    owed = live["total"].to_numpy() - live[key].map(paid).fillna(0.0).to_numpy()
    open_docs = live[owed > 0.5].assign(owed=owed[owed > 0.5])
    empty = pd.DataFrame(columns=[party, "h", "amount", "n_docs"])
    if open_docs.empty:
        return np.zeros(horizon), empty, np.zeros((0, horizon)), np.zeros(0)
    r0, gap = position(open_docs["due_day"].to_numpy(dtype=np.int64))
    chances = np.zeros((len(open_docs), horizon))
    for i in range(len(open_docs)):
        p = rate[gap[i]]
        idx = r0[i] + np.arange(k_lo, k_hi + 1)
        ok = (idx >= 0) & (idx < len(runs))
        day = np.where(ok, runs[np.clip(idx, 0, len(runs) - 1)], -1)
        passed = float(p[ok & (day <= cutoff)].sum())
        survive = max(1.0 - passed, 0.05)
        for j in np.flatnonzero(ok & (day > cutoff) & (day <= cutoff + horizon)):
            chances[i, day[j] - cutoff - 1] += p[j] / survive
    chances *= np.minimum(1.0, 1.0 / np.maximum(chances.sum(axis=1), 1e-12))[:, None]
    o = open_docs["owed"].to_numpy(dtype=float)
    amounts = chances * o[:, None]
    return amounts.sum(axis=0), _per_party(amounts, open_docs, party), chances, o


# ---------------------------------------------------------------- recurring bank flows


def _month_day(day: int) -> tuple[int, int, int]:
    d = day_date(day)
    return d.year, d.month, d.day


def _recurring(bank: pd.DataFrame, category: str, cutoff: int, cfg: BookConfig) -> FloatArray:
    """Signed forecast of one recurring category (see the module docstring)."""
    rows = bank[(bank["category"] == category) & (bank["cash_day"] > cutoff - 365)]
    out = np.zeros(cfg.horizon)
    if rows.empty:
        return out
    daily = rows.groupby("cash_day")["amount"].sum()
    days = daily.index.to_numpy(dtype=np.int64)
    weekday = _weekday(days)
    closed = {w for w in range(7) if np.mean(weekday == w) < 0.02}
    months = {_month_day(int(d))[:2] for d in range(max(cutoff - 364, int(days.min())), cutoff + 1)}
    support: dict[int, set[tuple[int, int]]] = {}
    for d in days:
        y, m, dom = _month_day(int(d))
        for shift in (0, 1, 2, -1, -2):
            source = int(d) - shift  # the nominal day this event may have been moved from
            if shift and _weekday(np.array([source]))[0] not in closed:
                continue
            sy, sm, sdom = _month_day(source)
            if (sy, sm) == (y, m):
                support.setdefault(sdom, set()).add((y, m))
    ranked = sorted(support, key=lambda dom: (-len(support[dom]), dom))
    nominal: list[int] = []
    for dom in ranked:
        if len(support[dom]) >= 0.5 * len(months) and all(abs(dom - k) > 2 for k in nominal):
            nominal.append(dom)
    shifts = [1]
    for dom in nominal:
        values = []
        for back in range(1, 5):
            first = day_date(cutoff) - pd.DateOffset(months=back - 1)
            y, m = first.year, first.month
            last_dom = pd.Timestamp(y, m, 1).days_in_month
            nom = (pd.Timestamp(y, m, min(dom, last_dom)).date() - day_date(0)).days
            near = daily[(daily.index >= nom - 2) & (daily.index <= nom + 2)]
            if nom + 2 > cutoff:
                continue  # this month's event may still be to come
            values.append(float(near.sum()))
            shifts += [int(d - nom) for d in near.index if d != nom]
            if len(values) == 3:
                break
        amount = float(np.mean(values)) if values else 0.0
        step = 1 if np.median(shifts) >= 0 else -1
        for ahead in range(0, cfg.horizon // 28 + 2):
            start = pd.Timestamp(day_date(cutoff)) + pd.DateOffset(months=ahead)
            nom_date = pd.Timestamp(start.year, start.month, min(dom, start.days_in_month)).date()
            nom = (nom_date - day_date(0)).days
            for _ in range(7):
                if _weekday(np.array([nom]))[0] not in closed:
                    break
                nom += step
            h = nom - cutoff
            if 1 <= h <= cfg.horizon:
                out[h - 1] += amount
    return out


# ---------------------------------------------------------------- the forecast


@dataclass
class BookForecast:
    """One point forecast: components (horizon × component) and the explanations."""

    cutoff: int
    components: pd.DataFrame  # index h = 1..horizon, one column per COMPONENTS entry (signed)
    details: pd.DataFrame  # component, h, party_id, party_name, n_docs, amount (signed)

    @property
    def net(self) -> FloatArray:
        return self.components.sum(axis=1).to_numpy(dtype=float)


def point_forecast(book: BookData, cutoff: int, cfg: BookConfig) -> BookForecast:
    """The point forecast for ``cutoff + 1 … cutoff + horizon`` from the book as of ``cutoff``."""
    b = book.as_of(cutoff)
    bank = b.bank
    ar_links = bank[(bank["invoice_id"] != "") & (bank["amount"] > 0)][
        ["cash_day", "invoice_id", "amount"]
    ]
    ap_links = bank[(bank["bill_id"] != "") & (bank["amount"] < 0)][
        ["cash_day", "bill_id", "amount"]
    ]
    ap_links = ap_links.assign(amount=-ap_links["amount"])
    segments = b.invoices.drop_duplicates("customer_id").set_index("customer_id")["segment"]
    coll, coll_detail, coll_p, coll_owed = _expected_book(
        b.invoices, "invoice_id", "customer_id", segments, b.ar_payments, ar_links, cutoff, cfg
    )
    one_group = pd.Series(dtype=str)
    runs = payment_run_days(
        ap_links,
        cutoff,
        cutoff - cfg.settle_days - cfg.history_days - 40,
        cfg.horizon,
        cfg.run_share,
    )
    if runs is None or cfg.run_share > 1:
        pay, pay_detail, pay_p, pay_owed = _expected_book(
            b.bills, "bill_id", "supplier_id", one_group, b.ap_payments, ap_links, cutoff, cfg
        )
    else:
        pay, pay_detail, pay_p, pay_owed = _run_book(
            b.bills, "bill_id", "supplier_id", b.ap_payments, ap_links, runs, cutoff, cfg
        )
    parts: dict[str, FloatArray] = {
        "collections_book": coll,
        "collections_new": _new_documents(ar_links, b.invoices, "invoice_id", cutoff, cfg),
        "payments_book": -pay,
        "payments_new": -_new_documents(ap_links, b.bills, "bill_id", cutoff, cfg),
    }
    for category in RECURRING_CATEGORIES:
        parts[f"recurring_{category}"] = _recurring(bank, category, cutoff, cfg)
    other = bank[
        (bank["invoice_id"] == "")
        & (bank["bill_id"] == "")
        & ~bank["category"].isin(RECURRING_CATEGORIES)
    ]
    other = other[other["cash_day"] > cutoff - 7 * cfg.recent_weeks]
    days = cutoff + np.arange(1, cfg.horizon + 1)
    recent = np.arange(cutoff - 7 * cfg.recent_weeks + 1, cutoff + 1)
    for name, direction in (("other_in", 1), ("other_out", -1)):
        rows = other[np.sign(other["amount"]) == direction]
        per_day = rows.groupby("cash_day")["amount"].sum().reindex(recent, fill_value=0.0)
        # the weekday median: these flows are lumpy one-offs, and a day's median is what an
        # absolute-error score (MASE) rewards
        by_weekday = per_day.groupby(_weekday(recent)).median().reindex(range(7), fill_value=0.0)
        parts[name] = by_weekday.to_numpy()[_weekday(days)]
    # The book's day totals are lumpy (a few large documents): replace their mean by their
    # simulated median; the difference is the "timing" component.
    median, mean = _simulated_median(
        np.vstack([coll_p, pay_p]),
        np.concatenate([coll_owed, -pay_owed]),
        cfg.simulations,
        seed=cutoff,
    )
    parts["timing"] = median - mean if cfg.simulations > 0 else np.zeros(cfg.horizon)
    details = []
    for component, frame, party, sign in (
        ("collections_book", coll_detail, "customer_id", 1.0),
        ("payments_book", pay_detail, "supplier_id", -1.0),
    ):
        if frame.empty:
            continue
        details.append(
            pd.DataFrame(
                {
                    "component": component,
                    "h": frame["h"].to_numpy(),
                    "party_id": frame[party].astype(str).to_numpy(),
                    "party_name": frame[party]
                    .astype(str)
                    .map(book.names)
                    .fillna(frame[party].astype(str))
                    .to_numpy(),
                    "n_docs": frame["n_docs"].to_numpy(),
                    "amount": sign * frame["amount"].to_numpy(),
                }
            )
        )
    detail_frame = pd.concat(details, ignore_index=True) if details else pd.DataFrame()
    components = pd.DataFrame(parts, index=pd.RangeIndex(1, cfg.horizon + 1, name="h"))
    return BookForecast(
        cutoff=cutoff, components=components[list(COMPONENTS)], details=detail_frame
    )


def conformal_quantiles(
    errors: FloatArray, level: float, pool: int, symmetric: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Per-horizon error quantiles from an (n_cutoffs × horizon) error array.

    Horizon h pools the errors of h-pool..h+pool; the quantile levels carry the split-conformal
    finite-sample correction ((n+1)/n), so that coverage is at least ``level`` on exchangeable
    errors. ``symmetric``: the interval is ± the ``level`` quantile of the absolute errors
    (the plain split-conformal score), which does not assume that the sign of the bias at the
    calibration cut-offs carries over.
    """
    if symmetric:
        horizon = errors.shape[1]
        width = np.zeros(horizon)
        for h in range(horizon):
            sample = np.abs(errors[:, max(0, h - pool) : h + pool + 1].ravel())
            sample = np.sort(sample[np.isfinite(sample)])
            n = len(sample)
            rank = math.ceil((n + 1) * level - 1e-9)  # the rank-th smallest |error|
            width[h] = math.inf if n == 0 or rank > n else float(sample[rank - 1])
        return -width, width
    alpha = 1.0 - level
    horizon = errors.shape[1]
    low, high = np.zeros(horizon), np.zeros(horizon)
    for h in range(horizon):
        sample = errors[:, max(0, h - pool) : h + pool + 1].ravel()
        sample = sample[np.isfinite(sample)]
        n = len(sample)
        if n == 0:
            low[h], high[h] = -math.inf, math.inf
            continue
        # (the small epsilons keep 100 * 0.1 from flooring to 9 in floating point)
        q_hi = min(1.0, math.ceil((n + 1) * (1 - alpha / 2) - 1e-9) / n)
        q_lo = max(0.0, math.floor((n + 1) * (alpha / 2) + 1e-9) / n)
        low[h], high[h] = np.quantile(sample, q_lo), np.quantile(sample, q_hi)
    return low, high


@dataclass
class BookModel:
    """Fitted book model: the configuration, the conformal error quantiles, the last forecast."""

    config: BookConfig = field(default_factory=BookConfig)
    q_low: list[float] = field(default_factory=list)
    q_high: list[float] = field(default_factory=list)
    forecast: BookForecast | None = None
    kind: str = "book"

    def fit(self, book: BookData, cutoff: int) -> Self:
        """Calibrate on earlier cut-offs, then forecast from ``cutoff`` (nothing later is read)."""
        cfg = self.config
        errors = []
        for k in range(cfg.calibration_cutoffs):
            past = cutoff - cfg.horizon - cfg.calibration_step * k
            actual = book.daily_net(past + 1, past + cfg.horizon).to_numpy()
            if len(book.as_of(past).bank) == 0:
                break
            errors.append(actual - point_forecast(book, past, cfg).net)
        if not errors:
            raise ValueError(
                "the book model needs at least one calibration cut-off with bank history"
            )
        low, high = conformal_quantiles(
            np.array(errors), cfg.level, cfg.pool, symmetric=cfg.symmetric
        )
        self.q_low, self.q_high = [float(v) for v in low], [float(v) for v in high]

        self.forecast = point_forecast(book, cutoff, cfg)
        return self

    def refresh(self, book: BookData, cutoff: int) -> Self:
        """A new point forecast from today's book, keeping the calibrated quantiles."""
        self.forecast = point_forecast(book, cutoff, self.config)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        """forecast_date, yhat, yhat_lower, yhat_upper, inflow_yhat, outflow_yhat (positive)."""
        if self.forecast is None or not self.q_low:
            raise NotFittedError("BookModel.predict before fit")
        comp = self.forecast.components.iloc[:horizon]
        yhat = comp.sum(axis=1).to_numpy(dtype=float)
        inflow = comp.clip(lower=0).sum(axis=1).to_numpy(dtype=float)
        return pd.DataFrame(
            {
                "forecast_date": [day_date(self.forecast.cutoff + h) for h in comp.index],
                "yhat": yhat,
                "yhat_lower": yhat + np.array(self.q_low[:horizon]),
                "yhat_upper": yhat + np.array(self.q_high[:horizon]),
                "inflow_yhat": inflow,
                "outflow_yhat": inflow - yhat,
            }
        )

    def explain(self, top: int = 1) -> pd.DataFrame:
        """Long frame: forecast_date, component, amount_vnd, detail (one readable line)."""
        if self.forecast is None:
            raise NotFittedError("BookModel.explain before fit")
        fc = self.forecast
        rows = []
        det = fc.details
        for h, values in fc.components.iterrows():
            for component, amount in values.items():
                text = str(component).replace("_", " ")
                if component == "timing":
                    text = (
                        "timing: open invoices and bills are paid on one day or another, so the "
                        "most likely (median) day total differs from the average"
                    )
                if not det.empty and component in ("collections_book", "payments_book"):
                    mine = det[(det["h"] == h) & (det["component"] == component)]
                    mine = mine.reindex(mine["amount"].abs().sort_values(ascending=False).index)[
                        :top
                    ]
                    if not mine.empty:
                        r = mine.iloc[0]
                        what = "collections" if component == "collections_book" else "payments"
                        text = (
                            f"expected {what}: largest {abs(r['amount']) / 1e6:,.1f} M VND from "
                            f"{int(r['n_docs'])} open {'invoices' if what == 'collections' else 'bills'} "
                            f"of {r['party_name']}"
                        )
                day = day_date(fc.cutoff + int(str(h)))
                rows.append((day, str(component), float(amount), text))
        return pd.DataFrame(rows, columns=["forecast_date", "component", "amount_vnd", "detail"])

    def save(self, path: Path) -> None:
        if not self.q_low:
            raise NotFittedError("BookModel.save before fit")
        path.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "config": self.config.as_dict(),
            "q_low": self.q_low,
            "q_high": self.q_high,
        }
        if self.forecast is not None:  # the training-day forecast, for the generic pyfunc
            state["cutoff"] = self.forecast.cutoff
            state["components"] = self.forecast.components.to_dict(orient="list")
        (path / "book.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, path: Path) -> Self:
        """The calibrated model; call :meth:`refresh` with today's book before predicting."""
        state = json.loads((path / "book.json").read_text())
        model = cls(
            config=BookConfig(**state["config"]), q_low=state["q_low"], q_high=state["q_high"]
        )
        if "components" in state:
            components = pd.DataFrame(state["components"])
            components.index = pd.RangeIndex(1, len(components) + 1, name="h")
            model.forecast = BookForecast(state["cutoff"], components, pd.DataFrame())
        return model
