"""The normal bank feed: receipts and supplier payments that mirror ar_payments/ap_payments
(every non-cash payment, with reference_id = its payment_id), plus payroll, rent, taxes,
utilities, bank fees, interest and occasional one-off purchases from new vendors.

Rows are kept as a frame of numbers (account, time, signed amount, counterparty id, category,
reference) and a parallel Arrow array of descriptions addressed by ``desc_row``, so building
300k+ rows needs no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from smepulse.bronze.contract import TXN_CATEGORIES
from smepulse.synth.ap import Purchases
from smepulse.synth.master import Master
from smepulse.synth.names import bank_name, business_names, person_names
from smepulse.synth.sales import CARD, CASH, EWALLET, Sales
from smepulse.synth.util import (
    I64,
    TET_DATES,
    Rng,
    business_seconds,
    day_number,
    entity_ids,
    join,
    local_us,
    round_to,
    to_date,
    weekday,
)

CAT = {name: i for i, name in enumerate(TXN_CATEGORIES)}
REF_NONE, REF_AR, REF_AP = 0, 1, 2
BANK_ACCOUNTS = [  # id index, bank, masked number
    ("Vietcombank", "******4821"),
    ("Techcombank", "******0937"),
    ("BIDV", "******5560"),
]
_MISC = ["Mua van phong pham", "Sua chua xe tai", "Chi phi tiep khach", "Phi van chuyen",
         "Mua thiet bi", "Bao tri may lanh", "In an tai lieu", "Mua vat tu dong goi"]  # fmt: skip


class Counterparties:
    """Counterparty names as the bank prints them, each name with one id."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, names: list[str]) -> I64:
        """Register new, distinct counterparties (a repeated name gets a number)."""
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            candidate, k = name, 1
            while candidate in self._ids:
                k += 1
                candidate = f"{name} {k}"
            self._ids[candidate] = len(self.names)
            self.names.append(candidate)
            out[i] = self._ids[candidate]
        return out

    def new_people_or_firms(self, rng: Rng, n: int) -> I64:
        """``n`` counterparties never seen before (people and small firms)."""
        people = [bank_name(x) for x in person_names(rng, n)]
        firms = [bank_name(x) for x in business_names(rng, "vendor", n)]
        pick = rng.random(n) < 0.5
        return self.add([people[i] if pick[i] else firms[i] for i in range(n)])


@dataclass
class Feed:
    """Bank rows under construction."""

    parts: list[pd.DataFrame] = field(default_factory=list)
    descriptions: list[pa.Array] = field(default_factory=list)
    n_desc: int = 0

    def add(self, frame: pd.DataFrame, desc: pa.Array | list[str]) -> None:
        array = desc if isinstance(desc, pa.Array) else pa.array(desc, pa.string())
        frame = frame.assign(desc_row=np.arange(len(frame), dtype=np.int64) + self.n_desc)
        self.parts.append(frame)
        self.descriptions.append(array)
        self.n_desc += len(frame)

    def add_rows(self, rows: list[tuple[int, int, int, int, int, str]], rng: Rng) -> None:
        """Rows of (day, account, amount, counterparty, category, description) at office hours."""
        if not rows:
            return
        day, account, amount, cp, cat, desc = (list(x) for x in zip(*rows, strict=True))
        days = np.array(day, dtype=np.int64)
        frame = pd.DataFrame(
            {
                "account": np.array(account, dtype=np.int64),
                "us": local_us(days, business_seconds(rng, len(days))),
                "amount": np.array(amount, dtype=np.int64),
                "cp": np.array(cp, dtype=np.int64),
                "category": np.array(cat, dtype=np.int64),
                "ref_kind": REF_NONE,
                "ref_no": -1,
            }
        )
        self.add(frame, [str(d) for d in desc])


def _payment_rows(feed: Feed, pay: pd.DataFrame, cp: I64, doc_ids: pa.Array, ar: bool) -> None:
    banked = np.flatnonzero(pay["method"].to_numpy() != CASH)
    method = pay["method"].to_numpy()[banked]
    sign = 1 if ar else -1
    frame = pd.DataFrame(
        {
            "account": pay["account"].to_numpy()[banked],
            "us": pay["us"].to_numpy()[banked],
            "amount": sign * pay["amount"].to_numpy()[banked],
            "cp": cp[banked],
            "category": CAT["sales_receipt"] if ar else CAT["supplier_payment"],
            "ref_kind": REF_AR if ar else REF_AP,
            "ref_no": banked,
        }
    )
    if ar:
        prefixes = np.where(method == EWALLET, 1, np.where(method == CARD, 2, 0))
        prefix = pa.array(
            ["CK thanh toan hoa don ", "MOMO thanh toan ", "POS thanh toan the "]
        ).take(pa.array(prefixes))
    else:
        prefix = pa.array(["Thanh toan tien hang theo "] * len(banked))
    feed.add(frame, join(prefix, doc_ids.take(pa.array(banked))))


def _office_day(day: int) -> int:
    """Move a Sunday to Monday."""
    return day + 1 if int(weekday(np.array([day]))[0]) == 6 else day


def _monthly_rows(
    rng: Rng, master: Master, sales: Sales, scale: float, cps: Counterparties
) -> list[tuple[int, int, int, int, int, str]]:
    rows: list[tuple[int, int, int, int, int, str]] = []
    root = float(np.sqrt(scale))
    landlord = cps.add(["CONG TY TNHH BAT DONG SAN TAN PHU", "TRAN THI MAI"])
    evn, water, viettel, treasury = cps.add(
        [
            "TONG CONG TY DIEN LUC TP HCM",
            "CONG TY CP CAP NUOC CHO LON",
            "VIETTEL TELECOM",
            "KHO BAC NHA NUOC",
        ]
    )
    bank_cp = cps.add([b.upper() for b, _ in BANK_ACCOUNTS])
    emp = master.employees
    emp_cp = cps.add(list(emp["bank"]))
    inv = sales.invoices[sales.invoices["cancelled_us"] < 0]
    month_of = inv["day"].to_numpy().astype("datetime64[D]").astype("datetime64[M]")
    vat_by_month = pd.Series(inv["vat"].to_numpy()).groupby(month_of).sum()
    net_by_month = pd.Series(inv["net"].to_numpy()).groupby(month_of).sum()
    first = np.datetime64(to_date(master.start_day), "M")
    last = np.datetime64(to_date(master.end_day), "M")
    rent = [
        round_to(np.array([85e6 * root]), 1_000_000)[0],
        round_to(np.array([32e6 * root]), 1_000_000)[0],
    ]
    in_range = range(master.start_day, master.end_day + 1)
    for month in np.arange(first, last + 1):
        md = int(month.astype("datetime64[D]").astype(np.int64))
        years = (md - master.start_day) / 365.25
        raise_factor = 1.06 ** max(0, int(years + 0.5))
        label = f"{str(month)[5:7]}/{str(month)[:4]}"
        prev = month - 1
        prev_label = f"{str(prev)[5:7]}/{str(prev)[:4]}"
        pay_day = _office_day(md + 4)
        if pay_day in in_range:
            active = np.flatnonzero(emp["hire_day"].to_numpy() < md)
            salaries = round_to(emp["salary"].to_numpy()[active] * raise_factor, 1000)
            rows += [
                (
                    pay_day,
                    0,
                    -int(s),
                    int(emp_cp[e]),
                    CAT["payroll"],
                    f"Tra luong thang {prev_label}",
                )
                for e, s in zip(active, salaries, strict=True)
            ]
        for j, (offset, what) in enumerate([(0, "kho"), (2, "van phong")]):
            day = _office_day(md + offset)
            if day in in_range:
                amount = round_to(np.array([rent[j] * 1.05 ** int(years)]), 1_000_000)[0]
                rows.append(
                    (
                        day,
                        0,
                        -int(amount),
                        int(landlord[j]),
                        CAT["rent"],
                        f"Tien thue {what} thang {label}",
                    )
                )
        season = 1.3 if int(str(month)[5:7]) in (4, 5, 6, 7) else 1.0
        for cp, day_off, base, what in (
            (evn, 11, 18e6, "Tien dien"),
            (water, 14, 2.4e6, "Tien nuoc"),
        ):
            day = _office_day(md + day_off + int(rng.integers(0, 4)))
            if day in in_range:
                amount = round_to(np.array([base * root * season * rng.lognormal(0, 0.12)]), 1000)[
                    0
                ]
                rows.append(
                    (day, 0, -int(amount), int(cp), CAT["utilities"], f"{what} thang {prev_label}")
                )
        day = _office_day(md + 9)
        if day in in_range:
            amount = round_to(np.array([3.3e6 * root]), 100_000)[0]
            rows.append(
                (
                    day,
                    2,
                    -int(amount),
                    int(viettel),
                    CAT["utilities"],
                    f"Cuoc internet thang {label}",
                )
            )
        day = _office_day(md + 19)
        if day in in_range and prev in vat_by_month.index:
            amount = round_to(np.array([0.25 * vat_by_month[prev]]), 1000)[0]
            rows.append(
                (
                    day,
                    0,
                    -int(amount),
                    int(treasury),
                    CAT["tax"],
                    f"Nop thue GTGT thang {prev_label}",
                )
            )
        if int(str(month)[5:7]) in (1, 4, 7, 10):
            day = _office_day(md + 28)
            quarter = [m for m in (prev, prev - 1, prev - 2) if m in net_by_month.index]
            if day in in_range and quarter:
                amount = round_to(np.array([0.006 * sum(net_by_month[m] for m in quarter)]), 1000)[
                    0
                ]
                rows.append(
                    (
                        day,
                        0,
                        -int(amount),
                        int(treasury),
                        CAT["tax"],
                        f"Tam nop thue TNDN quy {prev_label}",
                    )
                )
        day = int((month + 1).astype("datetime64[D]").astype(np.int64)) - 1
        if day in in_range:
            for acc in range(len(BANK_ACCOUNTS)):
                fee = int(round_to(rng.uniform(11_000, 330_000, size=1), 500)[0] * 1.1)
                rows.append(
                    (day, acc, -fee, int(bank_cp[acc]), CAT["other"], "Phi quan ly tai khoan")
                )
        day = md + 24
        if day in in_range:
            interest = int(round_to(rng.uniform(0.2e6, 2.5e6, size=1) * root, 1)[0])
            rows.append(
                (day, 0, interest, int(bank_cp[0]), CAT["other"], f"Lai tien gui thang {label}")
            )
    for year, tet in TET_DATES.items():
        day = _office_day(day_number(tet) - 10)
        if day in in_range:
            active = np.flatnonzero(emp["hire_day"].to_numpy() < day - 90)
            bonus = round_to(emp["salary"].to_numpy()[active], 1000)
            rows += [
                (day, 0, -int(b), int(emp_cp[e]), CAT["payroll"], f"Thuong Tet {year}")
                for e, b in zip(active, bonus, strict=True)
            ]
    return rows


def _misc_rows(
    rng: Rng, master: Master, scale: float, cps: Counterparties
) -> list[tuple[int, int, int, int, int, str]]:
    """Occasional purchases: some from regular vendors, most from vendors seen once."""
    days = np.arange(master.start_day, master.end_day + 1, dtype=np.int64)
    days = days[weekday(days) != 6]
    counts = rng.poisson(0.25 * np.sqrt(scale), size=len(days))
    day = np.repeat(days, counts)
    n = len(day)
    regular = cps.new_people_or_firms(rng, 8)
    is_regular = rng.random(n) < 0.4
    cp = np.where(is_regular, regular[rng.integers(0, 8, size=n)], -1)
    cp[~is_regular] = cps.new_people_or_firms(rng, int((~is_regular).sum()))
    raw = np.clip(rng.lognormal(np.log(3e6), 0.8, size=n), 2e5, 2.5e7)
    u = rng.random(n)
    amount = np.where(
        u < 0.5,
        round_to(raw, 100_000),
        np.where(u < 0.65, round_to(raw, 1_000_000), round_to(raw, 1000)),
    )
    what = rng.integers(0, len(_MISC), size=n)
    return [
        (int(day[i]), 0, -int(amount[i]), int(cp[i]), CAT["other"], _MISC[what[i]])
        for i in range(n)
    ]


def make_feed(
    rng: Rng, master: Master, sales: Sales, purchases: Purchases, scale: float
) -> tuple[Feed, Counterparties]:
    """All normal bank rows; counterparty ids index ``Counterparties.names``."""
    cps = Counterparties()
    cust_cp = cps.add(list(master.customers["bank"]))
    supp_cp = cps.add(list(master.suppliers["bank"]))
    feed = Feed()
    ar = sales.payments
    _payment_rows(
        feed,
        ar,
        cust_cp[ar["customer"].to_numpy()],
        entity_ids("invoice", ar["invoice"].to_numpy()),
        ar=True,
    )
    ap = purchases.payments
    _payment_rows(
        feed,
        ap,
        supp_cp[ap["supplier"].to_numpy()],
        entity_ids("bill", ap["bill"].to_numpy()),
        ar=False,
    )
    feed.add_rows(_monthly_rows(rng, master, sales, scale, cps), rng)
    feed.add_rows(_misc_rows(rng, master, scale, cps), rng)
    return feed, cps
