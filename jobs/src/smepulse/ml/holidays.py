"""Vietnamese public holidays 2020–2032 as a Prophet ``holidays`` frame.

The lunar holidays are facts, not computed here: the first day of Tết (Lunar New Year, 1/1 of
the Vietnamese lunar calendar, which follows UTC+7 and so differs from the Chinese new year in
some years, e.g. 2030) and the Hùng Kings' Commemoration (10/3 lunar). They were taken from the
Vietnamese government's calendar and cross-checked against the ``holidays`` package (a unit test
repeats the cross-check when that package is installed). Fixed-date holidays follow the 2019
Labour Code: 1 January, 30 April, 1 May and 2 September (plus one adjacent day since 2021).

Business effect windows are wider than the official days off: wholesalers and shops see a
pre-Tết rush for about a week and a slump of one to two weeks after it, so Tết gets a window
of -7..+10 days; Prophet fits one effect per offset day.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from smepulse.vn_calendar import TET as VN_TET

FIRST_YEAR = 2020
LAST_YEAR = 2032

# First day of Tết (mùng 1 Tết): shared with the data generator.
TET: dict[int, dt.date] = {y: d for y, d in VN_TET.items() if FIRST_YEAR <= y <= LAST_YEAR}

# Giỗ Tổ Hùng Vương (10th day of the 3rd lunar month).
HUNG_KINGS: dict[int, dt.date] = {
    2020: dt.date(2020, 4, 2),
    2021: dt.date(2021, 4, 21),
    2022: dt.date(2022, 4, 10),
    2023: dt.date(2023, 4, 29),
    2024: dt.date(2024, 4, 18),
    2025: dt.date(2025, 4, 7),
    2026: dt.date(2026, 4, 26),
    2027: dt.date(2027, 4, 16),
    2028: dt.date(2028, 4, 4),
    2029: dt.date(2029, 4, 23),
    2030: dt.date(2030, 4, 12),
    2031: dt.date(2031, 4, 1),
    2032: dt.date(2032, 4, 19),
}

# name -> (lower_window, upper_window) in days around the holiday date.
WINDOWS: dict[str, tuple[int, int]] = {
    "tet": (-7, 10),
    "new_year": (-1, 1),
    "hung_kings": (0, 1),
    "reunification_labour": (-1, 2),  # 30 April and 1 May, usually one long weekend
    "national_day": (-1, 1),
}


def holiday_dates(
    first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR
) -> list[tuple[str, dt.date]]:
    """(holiday name, date) pairs for the given years; ValueError outside 2020–2032."""
    if first_year < FIRST_YEAR or last_year > LAST_YEAR:
        raise ValueError(
            f"Vietnamese holidays are known for {FIRST_YEAR}–{LAST_YEAR} only; "
            f"asked for {first_year}–{last_year}: extend jobs/src/smepulse/ml/holidays.py"
        )
    out: list[tuple[str, dt.date]] = []
    for year in range(first_year, last_year + 1):
        out.append(("tet", TET[year]))
        out.append(("new_year", dt.date(year, 1, 1)))
        out.append(("hung_kings", HUNG_KINGS[year]))
        out.append(("reunification_labour", dt.date(year, 4, 30)))
        out.append(("national_day", dt.date(year, 9, 2)))
    return sorted(out, key=lambda item: item[1])


def prophet_holidays(first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR) -> pd.DataFrame:
    """The ``holidays`` frame Prophet expects: holiday, ds, lower_window, upper_window."""
    rows = [
        {
            "holiday": name,
            "ds": pd.Timestamp(day),
            "lower_window": WINDOWS[name][0],
            "upper_window": WINDOWS[name][1],
        }
        for name, day in holiday_dates(first_year, last_year)
    ]
    return pd.DataFrame(rows)
