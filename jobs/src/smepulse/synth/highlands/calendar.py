"""The Central Highlands farming calendar and the office calendar of the trader.

Robusta coffee, pepper and durian dominate Đắk Lắk, Gia Lai and Lâm Đồng. Farmers fertilise
when the rains start (May-June) and again mid-season (August-September), with a smaller
round after the harvest when they irrigate (February-March). The coffee harvest runs from
late October to January: little fertiliser is bought then, but tarpaulins, drying nets and
sacks are, and farmers have cash for the first time in the year, so debts are settled
between December and Tết.

All functions work on day numbers (days since 1970-01-01, local dates).
"""

from __future__ import annotations

import unicodedata

import numpy as np

from smepulse.synth.util import F64, I64, tet_offsets, weekday

#: Relative fertiliser/pesticide demand at the middle of each month (January first).
FARM_DEMAND = np.array([0.45, 0.85, 1.0, 1.2, 2.0, 2.1, 1.35, 1.75, 1.6, 0.8, 0.4, 0.35])
#: Share of each product category in a month's sales (rows: months; columns: the categories
#: of ``master.CATEGORIES`` = fertiliser, pesticide, seed, harvest, irrigation).
CATEGORY_MIX = np.array(
    [
        [0.50, 0.08, 0.04, 0.20, 0.18],  # Jan: harvest tail, dry-season irrigation
        [0.58, 0.10, 0.05, 0.05, 0.22],  # Feb
        [0.60, 0.12, 0.08, 0.02, 0.18],  # Mar
        [0.62, 0.12, 0.16, 0.02, 0.08],  # Apr: planting material before the rains
        [0.70, 0.14, 0.12, 0.01, 0.03],  # May: first rains, main application
        [0.70, 0.20, 0.07, 0.01, 0.02],  # Jun
        [0.66, 0.26, 0.04, 0.02, 0.02],  # Jul: pests in the wet season
        [0.68, 0.26, 0.02, 0.02, 0.02],  # Aug
        [0.66, 0.24, 0.02, 0.06, 0.02],  # Sep
        [0.48, 0.14, 0.02, 0.34, 0.02],  # Oct: tarpaulins and sacks for the harvest
        [0.30, 0.06, 0.02, 0.58, 0.04],  # Nov
        [0.36, 0.06, 0.02, 0.46, 0.10],  # Dec
    ]
)
#: Fixed-date public holidays (month, day): New Year, Reunification Day, Labour Day,
#: National Day.
FIXED_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 2))
#: The shop closes from the 29th of the last lunar month to the 5th day of Tết (inclusive).
TET_CLOSED = (-2, 5)


def ymd(days: I64) -> tuple[I64, I64, I64]:
    """(year, month 1-12, day of month) of day numbers."""
    d64 = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = d64.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (d64 - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, dom


def day_of(year: int, month: int, dom: int) -> int:
    """Day number of a calendar date."""
    return int(np.datetime64(f"{year:04d}-{month:02d}-{dom:02d}").astype(np.int64))


def month_start(days: I64) -> I64:
    d64 = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return np.asarray(d64.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64))


def is_tet_closed(days: I64) -> np.ndarray:
    off = tet_offsets(np.asarray(days, dtype=np.int64))
    return (off >= TET_CLOSED[0]) & (off <= TET_CLOSED[1])


def is_open(days: I64) -> np.ndarray:
    """Office/shop days: Monday-Saturday, not a public holiday, not the Tết closure."""
    days = np.asarray(days, dtype=np.int64)
    _, month, dom = ymd(days)
    holiday = np.zeros(len(days), dtype=bool)
    for m, d in FIXED_HOLIDAYS:
        holiday |= (month == m) & (dom == d)
    return np.asarray((weekday(days) != 6) & ~holiday & ~is_tet_closed(days), dtype=bool)


def next_open(days: I64, open_days: I64) -> I64:
    """The first open day on or after each day (``open_days`` sorted, extending far enough)."""
    idx = np.minimum(np.searchsorted(open_days, days, side="left"), len(open_days) - 1)
    return np.asarray(open_days[idx], dtype=np.int64)


def prev_open(days: I64, open_days: I64) -> I64:
    """The last open day on or before each day."""
    idx = np.maximum(np.searchsorted(open_days, days, side="right") - 1, 0)
    return np.asarray(open_days[idx], dtype=np.int64)


def farm_demand(days: I64) -> F64:
    """Seasonal demand index: ``FARM_DEMAND`` interpolated linearly between mid-months."""
    _, month, dom = ymd(days)
    pos = (month - 1) + (dom - 15.5) / 30.5  # months since mid-January
    x = np.arange(-1, 13)
    y = np.concatenate([FARM_DEMAND[-1:], FARM_DEMAND, FARM_DEMAND[:1]])
    return np.asarray(np.interp(pos, x, y), dtype=np.float64)


def tet_demand(days: I64) -> F64:
    """Before Tết farmers spend on the holiday, not on the farm; after it work restarts slowly."""
    off = tet_offsets(np.asarray(days, dtype=np.int64))
    f = np.ones(len(days))
    f[(off >= -14) & (off < TET_CLOSED[0])] = 0.6
    f[(off > TET_CLOSED[1]) & (off <= 15)] = 0.7
    f[(off >= 16) & (off <= 25)] = 1.15  # post-Tết fertilising round
    return f


def ascii_upper(text: str) -> str:
    """How a Vietnamese bank statement shows a name: upper case, no diacritics."""
    text = text.replace("Đ", "D").replace("đ", "d")
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )
    return stripped.upper()
