"""Generator helpers: time (business time zone <-> UTC), the sales calendar, Arrow builders.

Internally the generator works on numpy integers: days since 1970-01-01 (local business
dates), microseconds since the epoch (UTC instants), money as int64 VND. Arrow arrays are
built from those in one vectorised step per column.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from smepulse.bronze.contract import DATE, TIMESTAMP
from smepulse.vn_calendar import TET

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Rng = np.random.Generator

#: Asia/Ho_Chi_Minh is UTC+7 all year (Vietnam has had no daylight saving time since 1975).
LOCAL_OFFSET_S = 7 * 3600
DAY_S = 86_400
US = 1_000_000
_EPOCH = dt.date(1970, 1, 1)

#: Day 1 of the Lunar New Year (Tết Nguyên Đán) in Vietnam, 2015-2035.
TET_DATES: dict[int, dt.date] = TET

# Monday..Sunday demand: Friday restocking before the weekend, Sunday mostly closed.
_WEEKDAY = np.array([1.05, 1.0, 1.0, 1.0, 1.08, 0.8, 0.3])


def day_number(date: dt.date) -> int:
    """Days since 1970-01-01."""
    return (date - _EPOCH).days


def to_date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


def weekday(days: I64) -> I64:
    """0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday)."""
    return np.asarray((days + 3) % 7, dtype=np.int64)


def local_us(days: I64, seconds: I64) -> I64:
    """UTC microseconds of local date ``days`` at local ``seconds`` after midnight."""
    return np.asarray((days * DAY_S + seconds - LOCAL_OFFSET_S) * US, dtype=np.int64)


def local_day(us: I64) -> I64:
    """The local (business time zone) date of UTC instants, as day numbers."""
    return np.asarray((us // US + LOCAL_OFFSET_S) // DAY_S, dtype=np.int64)


def local_seconds(us: I64) -> I64:
    """Local seconds after midnight of UTC instants."""
    return np.asarray((us // US + LOCAL_OFFSET_S) % DAY_S, dtype=np.int64)


def tet_offsets(days: I64) -> I64:
    """Days from the nearest Tết (negative before it); large when no Tết is known nearby."""
    tet = np.array(sorted(day_number(d) for d in TET_DATES.values()), dtype=np.int64)
    idx = np.clip(np.searchsorted(tet, days), 1, len(tet) - 1)
    before, after = tet[idx - 1], tet[idx]
    nearest = np.where(days - before < after - days, before, after)
    return np.asarray(days - nearest, dtype=np.int64)


def tet_factor(days: I64) -> F64:
    """Tết effect on demand: stocking up 3 weeks before, a slump over the holiday, a rebound."""
    off = tet_offsets(days)
    f = np.ones(len(days))
    f[(off >= -21) & (off <= -6)] = 1.35  # shops stock up for Tết
    f[(off >= -5) & (off <= -1)] = 0.75
    f[(off >= 0) & (off <= 5)] = 0.08  # closed for the holiday
    ramp = (off >= 6) & (off <= 20)
    f[ramp] = 0.45 + (off[ramp] - 6) * (0.65 / 14)  # back to ~1.1 three weeks later
    return f


def month_end_factor(days: I64) -> F64:
    """Month-end closing peak (last 3 days) and a quieter start of the month."""
    d64 = days.astype("datetime64[D]")
    month_start = d64.astype("datetime64[M]").astype("datetime64[D]")
    next_month = (d64.astype("datetime64[M]") + 1).astype("datetime64[D]")
    to_end = (next_month - d64).astype(np.int64)
    from_start = (d64 - month_start).astype(np.int64)
    f = np.ones(len(days))
    f[to_end <= 3] = 1.35
    f[from_start <= 1] = 0.9
    return f


def demand_weights(days: I64, growth_per_year: float = 0.2) -> F64:
    """Relative sales volume of each day: weekday x month end x Tết x growth trend."""
    t = (days - days.min()) / 365.25
    trend = np.exp(np.log1p(growth_per_year) * t)
    return np.asarray(_WEEKDAY[weekday(days)] * month_end_factor(days) * tet_factor(days) * trend)


def business_seconds(rng: Rng, n: int, evening_share: float = 0.0) -> I64:
    """Local times of day: office hours 08:00-18:00 (peaks mid-morning and mid-afternoon),
    with ``evening_share`` of them between 18:00 and 22:00."""
    hours = np.arange(8, 18)
    weights = np.array([0.8, 1.3, 1.4, 1.1, 0.5, 0.7, 1.2, 1.3, 1.1, 0.7])
    h = rng.choice(hours, size=n, p=weights / weights.sum())
    evening = rng.random(n) < evening_share
    h[evening] = rng.integers(18, 22, size=int(evening.sum()))
    return np.asarray(h * 3600 + rng.integers(0, 3600, size=n), dtype=np.int64)


def round_to(values: I64 | F64, step: int) -> I64:
    """Round to the nearest multiple of ``step`` (VND amounts), at least ``step``."""
    rounded = np.rint(np.asarray(values, dtype=np.float64) / step).astype(np.int64) * step
    return np.asarray(np.maximum(rounded, step), dtype=np.int64)


# -- Arrow builders --------------------------------------------------------------------------


def ids(prefix: str, numbers: I64, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` (e.g. INV-00000042), vectorised."""
    digits = pc.utf8_lpad(
        pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string()), width, "0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def decimals(values: I64, type_: pa.Decimal128Type) -> pa.Array:
    """A decimal128 array whose *unscaled* integers are ``values`` (exact, no float step)."""
    v = np.asarray(values, dtype=np.int64)
    words = np.empty((len(v), 2), dtype=np.int64)
    words[:, 0] = v
    words[:, 1] = v >> 63  # sign extension into the high 64 bits (little-endian int128)
    return pa.Array.from_buffers(type_, len(v), [None, pa.py_buffer(words)])


def dates(days: I64) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=DATE)


def timestamps(us: I64) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), type=TIMESTAMP)


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays/scalars element-wise."""
    return pc.binary_join_element_wise(*parts, "")


#: Key formats (prefix, digits) of the generated ids; numbers start at 1.
ID_FORMAT: dict[str, tuple[str, int]] = {
    "customer": ("CUS-", 6),
    "supplier": ("SUP-", 5),
    "product": ("PRD-", 5),
    "invoice": ("INV-", 8),
    "ar_payment": ("ARP-", 8),
    "bill": ("BILL-", 7),
    "ap_payment": ("APP-", 7),
    "bank_account": ("BA-", 2),
    "txn": ("TXN-", 9),
}


def entity_ids(kind: str, index: I64) -> pa.Array:
    """Ids of entities by 0-based index (index 0 -> number 1)."""
    prefix, width = ID_FORMAT[kind]
    return ids(prefix, np.asarray(index, dtype=np.int64) + 1, width)
