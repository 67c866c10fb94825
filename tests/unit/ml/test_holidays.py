"""Vietnamese holidays: the sourced lunar dates agree with the ``holidays`` package."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest

from smepulse.ml.holidays import HUNG_KINGS, TET, holiday_dates, prophet_holidays
from smepulse.vn_calendar import TET as VN_TET

pytestmark = pytest.mark.unit


def test_lunar_dates_match_the_holidays_package() -> None:
    # An independent source: the ``holidays`` package's Vietnamese calendar.
    vn = holidays.country_holidays("VN", years=range(2015, 2036))
    assert {year: vn.get(day) for year, day in VN_TET.items()} == dict.fromkeys(
        range(2015, 2036), "Lunar New Year"
    )
    assert {year: VN_TET[year] for year in range(2020, 2033)} == TET
    assert all("Hung Kings" in str(vn.get(day)) for day in HUNG_KINGS.values())


def test_tet_2030_follows_the_vietnamese_calendar() -> None:
    # UTC+7: the new moon of 2 Feb 2030 16:07 UTC falls on 2 Feb in Hanoi, 3 Feb in Beijing.
    cn = holidays.country_holidays("CN", years=2030)
    assert TET[2030] == dt.date(2030, 2, 2)
    assert "Spring Festival" in str(cn.get(dt.date(2030, 2, 3)))
    assert "Spring Festival" not in str(cn.get(TET[2030]))


def test_prophet_frame_and_range() -> None:
    frame = prophet_holidays(2025, 2026)
    assert set(frame.columns) == {"holiday", "ds", "lower_window", "upper_window"}
    tet = frame[frame["holiday"] == "tet"]
    assert tet["ds"].dt.date.tolist() == [dt.date(2025, 1, 29), dt.date(2026, 2, 17)]
    assert (tet["lower_window"] < 0).all() and (tet["upper_window"] > 0).all()
    assert len(holiday_dates(2025, 2025)) == 5
    with pytest.raises(ValueError, match=r"extend jobs/src/smepulse/ml/holidays\.py"):
        holiday_dates(2019, 2020)
