"""Planted bank-feed anomalies: the frauds and slips an auditor of a provincial trader finds.

Each kind is planted rarely (together about 0.7 % of the feed) and every planted line is
labelled; the book (invoices, bills, payments) never knows about them.

- ``duplicate_supplier_payment``: a supplier transfer keyed in again 1-3 days later, same
  amount, same reference.
- ``split_below_approval_limit``: 3-5 round transfers of 190-199.5 million VND on one
  afternoon to one payee, each under the 200 million two-signature limit, no bill.
- ``night_transfer_new_payee``: a large round transfer between 22:00 and 05:00 to a person
  the company never paid before.
- ``salary_paid_twice``: an employee's salary transfer repeated a few days later.
- ``refund_without_invoice``: a "refund" to someone who was never invoiced.
- ``extra_zero_amount``: a rent, utility or fuel payment with one zero too many.
- ``cash_deposit_structuring``: cash deposits of 370-399 million VND on consecutive
  working days, each under the 400 million VND large-cash reporting threshold.
- ``payment_during_tet_shutdown``: a supplier transfer while the company is closed for Tết.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from smepulse.synth.highlands.calendar import ascii_upper
from smepulse.synth.highlands.feed import CAT, REF_AP, REF_NONE, Calendar, local_us_one
from smepulse.synth.highlands.master import AGRIBANK, VCB, Master
from smepulse.synth.highlands.names import person_name
from smepulse.synth.util import US, Rng, day_number
from smepulse.vn_calendar import TET

#: Share of the genuine feed that is planted, and the kinds' shares of the planted lines
#: (plus one ``payment_during_tet_shutdown`` in each Tết closure of the history).
RATE = 0.007
KINDS: dict[str, float] = {
    "duplicate_supplier_payment": 0.17,
    "split_below_approval_limit": 0.17,
    "night_transfer_new_payee": 0.14,
    "salary_paid_twice": 0.12,
    "refund_without_invoice": 0.12,
    "extra_zero_amount": 0.13,
    "cash_deposit_structuring": 0.15,
}
APPROVAL_LIMIT = 200_000_000
CASH_REPORT_THRESHOLD = 400_000_000
_SHELLS = ("CONG TY TNHH TM DV HOANG PHAT", "CONG TY TNHH XNK MINH KHANG", "DNTN NAM VIET")


def _day(us: int) -> int:
    return (us // US + 7 * 3600) // 86_400


def plant(rng: Rng, feed: pd.DataFrame, m: Master) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add/alter anomalous lines; return the feed sorted by time and the labels (``row`` is
    the line's position in the sorted feed, ``day`` its local date)."""
    feed = feed.copy()
    feed["anomaly"] = ""
    cal = Calendar(m)
    known = set(feed["cp"]) | set(m.customers["name"]) | set(m.customers["bank_name"])
    working = cal.open[(cal.open >= m.start_day) & (cal.open <= m.end_day - 4)]
    new: list[dict[str, object]] = []
    budget = len(feed) * RATE

    def stranger() -> str:
        name = ascii_upper(person_name(rng, 0.2))
        while name in known:
            name = ascii_upper(person_name(rng, 0.2))
        known.add(name)
        return name

    def line(
        day: int,
        secs: int,
        account: int,
        amount: int,
        cp: str,
        desc: str,
        cat: str,
        kind: str,
        ref: tuple[int, int] = (REF_NONE, -1),
    ) -> None:
        us = local_us_one(day, secs)
        new.append(
            {
                "us": us,
                "account": account,
                "amount": amount,
                "cp": cp,
                "desc": desc,
                "category": CAT[cat],
                "ref_kind": ref[0],
                "ref_no": ref[1],
                "anomaly": kind,
            }
        )

    def copy_later(idx: int, kind: str) -> None:
        row: dict[str, Any] = {str(k): v for k, v in feed.loc[idx].items()}
        day = min(_day(int(row["us"])) + int(rng.integers(1, 4)), m.end_day)
        line(
            day,
            int(rng.integers(10 * 3600, 16 * 3600)),
            int(row["account"]),
            int(row["amount"]),
            str(row["cp"]),
            str(row["desc"]),
            _cat_name(int(row["category"])),
            kind,
            (int(row["ref_kind"]), int(row["ref_no"])),
        )

    # Unbiased rounding: small feeds still get the right share on average.
    counts = {k: int(budget * w + rng.random()) for k, w in KINDS.items()}
    ap = feed.index[(feed["ref_kind"] == REF_AP)].to_numpy()
    for idx in rng.choice(
        ap, size=min(len(ap), counts["duplicate_supplier_payment"]), replace=False
    ):
        copy_later(int(idx), "duplicate_supplier_payment")
    payroll = feed.index[feed["desc"].str.startswith("TRA LUONG")].to_numpy()
    for idx in rng.choice(
        payroll, size=min(len(payroll), counts["salary_paid_twice"]), replace=False
    ):
        copy_later(int(idx), "salary_paid_twice")
    planted = 0
    while planted < counts["split_below_approval_limit"] and len(working):
        day = int(rng.choice(working))
        payee = (
            str(rng.choice(m.suppliers["name"])) if rng.random() < 0.6 else str(rng.choice(_SHELLS))
        )
        secs = 13 * 3600 + int(rng.integers(0, 1800))
        for part in range(int(rng.integers(3, 6))):
            amount = APPROVAL_LIMIT - int(rng.integers(1, 21)) * 500_000  # 190-199.5 million
            secs += int(rng.integers(5, 26)) * 60
            line(
                day,
                secs,
                AGRIBANK,
                -amount,
                payee,
                f"TAM UNG TIEN HANG DOT {part + 1}",
                "supplier_payment",
                "split_below_approval_limit",
            )
            planted += 1
    for _ in range(counts["night_transfer_new_payee"]):
        day = int(rng.choice(working))
        hour = int(rng.choice([22, 23, 0, 1, 2, 3, 4]))
        secs = hour * 3600 + int(rng.integers(0, 3600))
        line(
            day,
            secs,
            int(rng.choice([AGRIBANK, VCB])),
            -int(rng.integers(50, 450)) * 1_000_000,
            stranger(),
            "CHUYEN TIEN",
            "other",
            "night_transfer_new_payee",
        )
    for _ in range(counts["refund_without_invoice"]):
        day = int(rng.choice(working))
        line(
            day,
            int(rng.integers(9 * 3600, 17 * 3600)),
            VCB,
            -int(rng.integers(80, 900)) * 100_000,
            stranger(),
            "HOAN TIEN KHACH HANG TRA LAI HANG",
            "other",
            "refund_without_invoice",
        )
    planted = 0
    while planted < counts["cash_deposit_structuring"] and len(working) > 5:
        start = int(rng.integers(0, len(working) - 4))
        depositor = stranger()
        for day in working[start : start + int(rng.integers(3, 5))]:
            amount = CASH_REPORT_THRESHOLD - int(rng.integers(1, 31)) * 1_000_000
            line(
                int(day),
                int(rng.integers(8 * 3600, 11 * 3600)),
                AGRIBANK,
                amount,
                depositor,
                f"{depositor} NOP TIEN MAT",
                "other",
                "cash_deposit_structuring",
            )
            planted += 1
    # The third day of Tết, whenever the history holds it.
    tet_days = [day_number(d) + 2 for d in TET.values()]
    for day in (d for d in tet_days if m.start_day <= d <= m.end_day):
        line(
            int(day),
            int(rng.integers(9 * 3600, 20 * 3600)),
            AGRIBANK,
            -int(rng.integers(150, 600)) * 1_000_000,
            str(rng.choice(m.suppliers["name"])),
            "CHUYEN TIEN THANH TOAN",
            "supplier_payment",
            "payment_during_tet_shutdown",
        )
    fixed = feed.index[
        feed["category"].isin([CAT["rent"], CAT["utilities"]])
        | feed["cp"].str.startswith("CONG TY XANG DAU")
    ].to_numpy()
    for idx in rng.choice(fixed, size=min(len(fixed), counts["extra_zero_amount"]), replace=False):
        feed.loc[idx, "amount"] = int(feed.loc[idx, "amount"]) * 10
        feed.loc[idx, "anomaly"] = "extra_zero_amount"
    out = pd.concat([feed, pd.DataFrame(new)], ignore_index=True)
    out = out.sort_values("us", kind="stable").reset_index(drop=True)
    flagged = out.index[out["anomaly"] != ""].to_numpy()
    labels = pd.DataFrame(
        {
            "row": flagged,
            "anomaly_type": out["anomaly"].to_numpy()[flagged],
            "day": [_day(int(u)) for u in out["us"].to_numpy()[flagged]],
        }
    )
    return out, labels


def _cat_name(code: int) -> str:
    return next(k for k, v in CAT.items() if v == code)
