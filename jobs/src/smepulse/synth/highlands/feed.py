"""Bank lines under construction, and the working-day calendar the bank flows follow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smepulse.bronze.contract import TXN_CATEGORIES
from smepulse.synth.highlands.calendar import ascii_upper, is_open, next_open, prev_open, ymd
from smepulse.synth.highlands.master import OWN_NAME, Master
from smepulse.synth.util import LOCAL_OFFSET_S, US

CAT = {name: i for i, name in enumerate(TXN_CATEGORIES)}
REF_NONE, REF_AR, REF_AP = 0, 1, 2
OWN_BANK_NAME = ascii_upper(OWN_NAME)


@dataclass
class Feed:
    """Bank lines under construction (one list per column)."""

    us: list[int] = field(default_factory=list)
    account: list[int] = field(default_factory=list)
    amount: list[int] = field(default_factory=list)
    counterparty: list[str] = field(default_factory=list)
    description: list[str] = field(default_factory=list)
    category: list[int] = field(default_factory=list)
    ref_kind: list[int] = field(default_factory=list)
    ref_no: list[int] = field(default_factory=list)

    def add(
        self,
        day: int,
        secs: int,
        account: int,
        amount: float,
        cp: str,
        desc: str,
        cat: str,
        ref: tuple[int, int] = (REF_NONE, -1),
    ) -> None:
        self.add_us(local_us_one(day, secs), account, amount, cp, desc, cat, ref)

    def add_us(
        self,
        us: int,
        account: int,
        amount: float,
        cp: str,
        desc: str,
        cat: str,
        ref: tuple[int, int] = (REF_NONE, -1),
    ) -> None:
        self.us.append(us)
        self.account.append(account)
        self.amount.append(round(amount))
        self.counterparty.append(cp)
        self.description.append(desc)
        self.category.append(CAT[cat])
        self.ref_kind.append(ref[0])
        self.ref_no.append(ref[1])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "us": self.us,
                "account": self.account,
                "amount": self.amount,
                "cp": self.counterparty,
                "desc": self.description,
                "category": self.category,
                "ref_kind": self.ref_kind,
                "ref_no": self.ref_no,
            }
        )


def local_us_one(day: int, secs: int) -> int:
    """``util.local_us`` for one instant (plain integers: called once per line)."""
    return (day * 86_400 + secs - LOCAL_OFFSET_S) * US


class Calendar:
    """Working days around the history, for moving due days."""

    def __init__(self, m: Master) -> None:
        days = np.arange(m.start_day - 400, m.end_day + 400, dtype=np.int64)
        self.open = days[is_open(days)]
        self.start, self.end = m.start_day, m.end_day

    def before(self, day: int) -> int:
        return int(prev_open(np.array([day]), self.open)[0])

    def after(self, day: int) -> int:
        return int(next_open(np.array([day]), self.open)[0])

    def months(self) -> list[tuple[int, int]]:
        """(year, month) from the month before the history to the month after it."""
        y, mo, _ = ymd(np.array([self.start - 31, self.end + 31]))
        out, (yy, mm) = [], (int(y[0]), int(mo[0]))
        while (yy, mm) <= (int(y[1]), int(mo[1])):
            out.append((yy, mm))
            yy, mm = (yy + 1, 1) if mm == 12 else (yy, mm + 1)
        return out

    def mondays(self) -> range:
        """The Mondays from the week before the history to its end (1970-01-05 was one)."""
        first = self.start - 7 - (self.start - 4) % 7
        return range(first, self.end + 1, 7)

    def inside(self, day: int) -> bool:
        return self.start <= day <= self.end
