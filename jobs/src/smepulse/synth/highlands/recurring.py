"""The flows a bank statement shows and no invoice does.

- Payroll on the 5th for the previous month from the BIDV account (one transfer per
  employee; sales staff earn a seasonal commission), funded from Agribank the working day
  before; a 13th-month salary ten days before Tết.
- Social insurance on the last working day of the month; VAT for month M and the personal
  income tax withheld by the 20th of M+1; provisional corporate income tax by the 30th of the
  month after each quarter; the licence fee by 30 January (abolished from 2026).
- Rent on the first working day of the month (Buôn Ma Thuột warehouse and shop) and
  quarterly in advance (Gia Lai depot); electricity and telecom by direct debit overnight;
  water by transfer; fuel for the trucks weekly.
- A seasonal working-capital loan from Agribank drawn in April-June and repaid from the
  harvest between December and Tết, interest collected on the 25th overnight; a truck loan
  repaid monthly on the 15th.
- Weekly deposits of the shop's cash, weekly sweeps from the receipts account to the
  operating account, monthly account fees and deposit interest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smepulse.synth.highlands.calendar import ascii_upper, day_of, farm_demand, ymd
from smepulse.synth.highlands.feed import OWN_BANK_NAME, Calendar, Feed
from smepulse.synth.highlands.master import AGRIBANK, BIDV, VCB, Master
from smepulse.synth.highlands.names import person_name
from smepulse.synth.highlands.purchases import Purchases
from smepulse.synth.highlands.sales import CASH_M, Sales
from smepulse.synth.util import Rng
from smepulse.vn_calendar import TET

TREASURY = "KHO BAC NHA NUOC TINH DAK LAK"
AGRIBANK_NAME = "NGAN HANG AGRIBANK CN DAK LAK"
SEASONAL_LOAN_RATE = 0.082
TRUCK_LOAN_PRINCIPAL = 35_000_000


def payroll(feed: Feed, m: Master, cal: Calendar) -> None:
    staff = m.staff
    for y, mo in cal.months():
        pay_day = cal.before(day_of(y, mo, 5))
        worked = day_of(y - (mo == 1), 12 if mo == 1 else mo - 1, 15)
        season = float(farm_demand(np.array([worked]))[0])
        gross = staff["salary"].to_numpy() * (1 + 0.35 * season * staff["is_sales"].to_numpy())
        net = np.round(gross * 0.895, -3).astype(np.int64)  # less the employee's 10.5 % insurance
        period = f"T{12 if mo == 1 else mo - 1:02d}/{y - (mo == 1)}"
        _pay_staff(feed, cal, pay_day, net, staff["bank_name"], f"TRA LUONG {period}")
        bhxh_day = cal.before(day_of(y, mo, 1) - 1)
        if cal.inside(bhxh_day):
            feed.add(
                bhxh_day,
                14 * 3600 + 600,
                AGRIBANK,
                -round(gross.sum() * 0.32, -3),
                "BAO HIEM XA HOI TINH DAK LAK",
                f"NOP BHXH BHYT BHTN {period}",
                "tax",
            )
    for year, tet in TET.items():
        day = cal.before(int(np.datetime64(tet, "D").astype(np.int64)) - 10)
        bonus = staff["salary"].to_numpy().astype(np.int64)
        what = f"THUONG TET LUONG THANG 13 NAM {year - 1}"
        _pay_staff(feed, cal, day, bonus, staff["bank_name"], what)


def _pay_staff(
    feed: Feed, cal: Calendar, day: int, net: np.ndarray, names: pd.Series, what: str
) -> None:
    if not cal.inside(day):
        return
    fund = cal.before(day - 1)
    total = int(-(-net.sum() // 10_000_000) * 10_000_000)
    if cal.inside(fund):
        desc = f"CHUYEN TIEN NOI BO - {what}"
        feed.add(fund, 15 * 3600, AGRIBANK, -total, OWN_BANK_NAME, desc, "other")
        feed.add(fund, 15 * 3600 + 20, BIDV, total, OWN_BANK_NAME, desc, "other")
    for k, (amount, name) in enumerate(zip(net, names, strict=True)):
        feed.add(
            day,
            9 * 3600 + 1800 + 15 * k,
            BIDV,
            -int(amount),
            str(name),
            f"{what} {name}",
            "payroll",
        )


def taxes(rng: Rng, feed: Feed, m: Master, s: Sales, p: Purchases, cal: Calendar) -> None:
    tax_code = "6001873452"
    inv, bills = s.invoices, p.bills
    live = inv["cancelled_us"].to_numpy() < 0
    inv_month = ymd(inv["day"].to_numpy())
    bill_month = ymd(bills["day"].to_numpy())
    bill_vat = bills["total"].to_numpy() - bills["net"].to_numpy()
    net_sales = inv["total"].to_numpy() - inv["vat"].to_numpy()
    credit = 0  # input VAT carried forward
    director = int(m.staff["salary"].to_numpy()[0])
    for y, mo in cal.months():
        in_month = live & (inv_month[0] == y) & (inv_month[1] == mo)
        output = int(inv["vat"].to_numpy()[in_month].sum())
        b_month = (bill_month[0] == y) & (bill_month[1] == mo)
        due = output - int(bill_vat[b_month].sum()) - credit
        credit = max(0, -due)
        ny, nm = (y + 1, 1) if mo == 12 else (y, mo + 1)
        day = cal.before(day_of(ny, nm, 20)) - int(rng.integers(0, 3))
        day = cal.before(day)
        if not cal.inside(day):
            continue
        if due > 0:
            feed.add(
                day,
                10 * 3600 + 900,
                AGRIBANK,
                -due,
                TREASURY,
                f"NOP THUE GTGT THANG {mo:02d}/{y} MST {tax_code}",
                "tax",
            )
        pit = round((director - 11_000_000 - 1_100_000) * 0.15 - 1_500_000, -3)
        feed.add(
            day,
            10 * 3600 + 1500,
            AGRIBANK,
            -pit,
            TREASURY,
            f"NOP THUE TNCN THANG {mo:02d}/{y} MST {tax_code}",
            "tax",
        )
    for y, mo in cal.months():
        if mo not in (1, 4, 7, 10):
            continue
        q_end = day_of(y, mo, 1)
        q_start = day_of(y - (mo == 1), 10 if mo == 1 else mo - 3, 1)
        in_q = live & (inv["day"].to_numpy() >= q_start) & (inv["day"].to_numpy() < q_end)
        cit = round(net_sales[in_q].sum() * 0.022 * 0.2, -3)
        day = cal.before(day_of(y, mo, 30))
        quarter = (mo - 2) % 12 // 3 + 1
        if cal.inside(day) and cit > 0:
            feed.add(
                day,
                10 * 3600 + 2400,
                AGRIBANK,
                -cit,
                TREASURY,
                f"NOP THUE TNDN TAM TINH QUY {quarter}/{y - (mo == 1)}",
                "tax",
            )
        if mo == 1 and y <= 2025 and cal.inside(day):
            feed.add(
                day,
                10 * 3600 + 2700,
                AGRIBANK,
                -3_000_000,
                TREASURY,
                f"NOP LE PHI MON BAI NAM {y}",
                "tax",
            )


def premises_and_utilities(rng: Rng, feed: Feed, cal: Calendar) -> None:
    landlord = ascii_upper(person_name(rng))
    depot_owner = ascii_upper(person_name(rng, 0.5))
    for y, mo in cal.months():
        first = cal.after(day_of(y, mo, 1))
        rent = round(45_000_000 * 1.05 ** (y - 2023), -5)
        if cal.inside(first):
            feed.add(
                first,
                9 * 3600 + 1200,
                AGRIBANK,
                -rent,
                landlord,
                f"TIEN THUE KHO VA CUA HANG THANG {mo:02d}/{y}",
                "rent",
            )
            if mo in (1, 4, 7, 10):
                feed.add(
                    first,
                    9 * 3600 + 1500,
                    AGRIBANK,
                    -36_000_000,
                    depot_owner,
                    f"TIEN THUE KHO CHU SE QUY {(mo + 2) // 3}/{y}",
                    "rent",
                )
        dry = 1.25 if mo in (2, 3, 4) else 1.0
        debit = day_of(y, mo, int(rng.integers(14, 17)))  # posted overnight, any day
        if cal.inside(debit):
            feed.add(
                debit,
                int(rng.integers(3600, 3 * 3600)),
                AGRIBANK,
                -round(9_500_000 * dry * rng.uniform(0.88, 1.12)),
                "TONG CONG TY DIEN LUC MIEN TRUNG",
                f"TRICH NO TIEN DIEN KY {mo:02d}/{y} MA KH PC05HH0417",
                "utilities",
            )
        telecom = day_of(y, mo, 8)
        if cal.inside(telecom):
            feed.add(
                telecom,
                2 * 3600 + 900,
                VCB,
                -1_650_000,
                "VNPT DAK LAK",
                f"TRICH NO CUOC VIEN THONG {mo:02d}/{y}",
                "utilities",
            )
        water = cal.before(day_of(y, mo, 20))
        if cal.inside(water):
            feed.add(
                water,
                14 * 3600 + int(rng.integers(0, 3600)),
                AGRIBANK,
                -round(1_150_000 * rng.uniform(0.8, 1.2), -2),
                "CONG TY CP CAP THOAT NUOC DAK LAK",
                f"TIEN NUOC THANG {mo:02d}/{y}",
                "utilities",
            )
    for monday in cal.mondays():
        day = cal.before(monday + 5)  # Saturday
        if cal.inside(day):
            fuel = 14_000_000 * float(farm_demand(np.array([day]))[0]) * rng.uniform(0.85, 1.15)
            feed.add(
                day,
                16 * 3600 + int(rng.integers(0, 1800)),
                AGRIBANK,
                -round(fuel, -3),
                "CONG TY XANG DAU NAM TAY NGUYEN",
                "THANH TOAN TIEN DAU XE GIAO HANG",
                "other",
            )


def loans(rng: Rng, feed: Feed, scale: float, cal: Calendar) -> None:
    """The seasonal credit line (drawn before the rains, repaid from the harvest before
    Tết) and the truck loan."""
    events: list[tuple[int, int]] = []  # (day, +draw / -repayment)
    y0, y1 = int(ymd(np.array([cal.start]))[0][0]) - 1, int(ymd(np.array([cal.end]))[0][0])
    for y in range(y0, y1 + 1):
        draws = [round(3_000_000_000 * scale * rng.uniform(0.8, 1.3), -8) for _ in range(3)]
        for mo, amount in zip((4, 5, 6), draws, strict=True):
            events.append((cal.after(day_of(y, mo, 6)), int(amount)))
        tet = int(np.datetime64(TET[y + 1], "D").astype(np.int64))
        total = sum(int(d) for d in draws)
        repay_days = [
            cal.before(day_of(y, 12, 20)),
            cal.before(day_of(y + 1, 1, 10)),
            cal.before(tet - 7),
        ]
        parts = [total // 3, total // 3, total - 2 * (total // 3)]
        events += [(d, -a) for d, a in zip(sorted(repay_days), parts, strict=True)]
    events.sort()
    contract = "LAV-2468"
    balance, k = 0, 0
    for y, mo in cal.months():
        interest_day = day_of(y, mo, 25)
        month_begin = day_of(y, mo, 1)
        accrued = 0.0
        for day in range(month_begin - 6, interest_day):
            while k < len(events) and events[k][0] <= day:
                d, amount = events[k]
                balance += amount
                if cal.inside(d):
                    what = (
                        "GIAI NGAN VAY VON LUU DONG"
                        if amount > 0
                        else "TRA NO GOC VAY VON LUU DONG"
                    )
                    feed.add(
                        d,
                        10 * 3600 + 1800,
                        AGRIBANK,
                        amount,
                        AGRIBANK_NAME,
                        f"{what} HD {contract}",
                        "other",
                    )
                k += 1
            if day >= day_of(y - (mo == 1), 12 if mo == 1 else mo - 1, 25):
                accrued += balance * SEASONAL_LOAN_RATE / 365
        if cal.inside(interest_day) and accrued > 0:
            feed.add(
                interest_day,
                1800 + int(rng.integers(0, 1200)),
                AGRIBANK,
                -round(accrued),
                AGRIBANK_NAME,
                f"THU LAI VAY VON LUU DONG HD {contract}",
                "other",
            )
    truck_balance = 2_100_000_000 - 12 * TRUCK_LOAN_PRINCIPAL
    for y, mo in cal.months():
        if truck_balance <= 0:
            break
        day = day_of(y, mo, 15)
        interest = round(truck_balance * 0.095 / 12)
        if cal.inside(day):
            feed.add(
                day,
                1200,
                AGRIBANK,
                -(TRUCK_LOAN_PRINCIPAL + interest),
                AGRIBANK_NAME,
                "THU NO GOC VA LAI HD VAY MUA XE TAI TDL-0917",
                "other",
            )
        truck_balance -= TRUCK_LOAN_PRINCIPAL


def cash_and_sweeps(rng: Rng, feed: Feed, m: Master, s: Sales, cal: Calendar) -> None:
    pay = s.payments
    day = pay["day"].to_numpy()
    cash = pay["method"].to_numpy() == CASH_M
    to_vcb = pay["account"].to_numpy() == VCB
    cashier = str(m.staff.loc[m.staff["role"] == "Thủ quỹ", "bank_name"].iat[0])
    for week in cal.mondays():
        in_week = (day >= week - 7) & (day < week)  # the previous Monday-Sunday
        takings = int(pay["amount"].to_numpy()[in_week & cash].sum())
        deposit = round(takings * rng.uniform(0.75, 0.92), -5)
        d = cal.after(week)
        if deposit >= 5_000_000 and cal.inside(d):
            feed.add(
                d,
                10 * 3600 + int(rng.integers(0, 5400)),
                AGRIBANK,
                deposit,
                cashier,
                f"{cashier} NOP TIEN MAT VAO TAI KHOAN",
                "other",
            )
        received = int(pay["amount"].to_numpy()[in_week & to_vcb].sum())
        sweep = received * 7 // 10 // 10_000_000 * 10_000_000
        d = cal.before(week + 4)
        if sweep >= 50_000_000 and cal.inside(d):
            desc = "CHUYEN TIEN NOI BO SANG TK AGRIBANK"
            feed.add(d, 15 * 3600 + 2400, VCB, -sweep, OWN_BANK_NAME, desc, "other")
            feed.add(d, 15 * 3600 + 2410, AGRIBANK, sweep, OWN_BANK_NAME, desc, "other")
    for y, mo in cal.months():
        last = day_of(y + (mo == 12), 1 if mo == 12 else mo + 1, 1) - 1
        if not cal.inside(last):
            continue
        for account in (AGRIBANK, VCB, BIDV):
            feed.add(
                last,
                23 * 3600 + 1800 + account * 60,
                account,
                -int(rng.choice([22_000, 33_000, 55_000])),
                "PHI DICH VU NGAN HANG",
                "PHI QUAN LY TAI KHOAN VA SMS BANKING",
                "other",
            )
            feed.add(
                last,
                23 * 3600 + 2400 + account * 60,
                account,
                int(rng.integers(20, 600)) * 1000,
                "LAI TIEN GUI",
                "TRA LAI TIEN GUI KHONG KY HAN",
                "other",
            )
