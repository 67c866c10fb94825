"""UC09 accuracy monitoring on the embedded default (a real DuckDB warehouse): forecasts scored
by horizon, the rolling figures, one retrain request per breach, and retention.

The scenario is worked out by hand. Realised net cash flow is 100 M VND every day. On day L
the forecast for L+1..L+3 is made with a relative error e_L: 0 on good days, +50 % on days
6-8 and 16-17. With a one-day window, day L's MAPE is the mean error of the forecasts made on
L-1, L-2, L-3, so it is above 2 % exactly on days 7-11 and 17-20: two breaches, starting on
days 7 and 17, hence exactly two ml-training requests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from smepulse.ml.uc09_accuracy import ACCURACY, DAILY, HISTORY, REQUESTS, monitor, record_forecast
from smepulse.settings import Settings

pytestmark = pytest.mark.integration
START = dt.date(2026, 5, 1)  # day 1
BAD = {6, 7, 8, 16, 17}
DAYS = 25


def _day(n: int) -> dt.date:
    return START + dt.timedelta(days=n - 1)


def _settings(home: Path, n: int) -> Settings:
    return Settings(
        home=home,
        logical_date=_day(n),
        ml_accuracy_window_days=1,
        ml_accuracy_mape_threshold=0.02,
        ml_archive_after_days=10,
    )


def _silver(home: Path) -> None:
    days = pd.date_range(_day(-30), _day(DAYS + 5), freq="D")
    frame = pd.DataFrame({"cash_date": days.date, "net_vnd": 100_000_000})
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.register("frame", frame)
        con.execute("create schema silver")
        con.execute(
            "create table silver.ml_training_uc09_daily_cashflow as select "
            "cast(cash_date as date) cash_date, cast(net_vnd as decimal(18,0)) net_vnd from frame"
        )
    finally:
        con.close()


def _forecast(n: int) -> pd.DataFrame:
    error = 0.5 if n in BAD else 0.0
    yhat = round(100_000_000 * (1 + error))
    return pd.DataFrame(
        {
            "forecast_date": [_day(n + h) for h in (1, 2, 3)],
            "yhat_vnd": yhat,
            "yhat_lower_vnd": yhat - 10_000_000,
            "yhat_upper_vnd": yhat + 10_000_000,
            "model_version": "1",
            "model_kind": "book",
            "logical_date": _day(n),
        }
    )


def _table(home: Path, name: str) -> pd.DataFrame:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from gold.{name}").fetchdf()
    finally:
        con.close()


def test_scored_by_horizon_one_request_per_breach_and_nothing_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _silver(home)
    launched: list[tuple[dt.date, str]] = []

    def launcher(settings: Settings, logical: dt.date, breach: str) -> str:
        launched.append((logical, breach))
        return f"test run for {logical}"

    summaries = {}
    for n in range(1, DAYS + 1):
        settings = _settings(home, n)
        record_forecast(settings, _forecast(n))
        summaries[n] = monitor(settings, launcher)
        if n == 9:  # a re-run of a day in the middle of a breach changes nothing
            record_forecast(settings, _forecast(n))
            again = monitor(settings, launcher)
            assert again["retrain_requested"] is False
            assert again["breach_started"] == summaries[n]["breach_started"]

    breached = {n for n, s in summaries.items() if s["is_breached"]}
    assert breached == {7, 8, 9, 10, 11, 17, 18, 19, 20}
    assert launched == [(_day(7), _day(7).isoformat()), (_day(17), _day(17).isoformat())]
    requests = _table(home, REQUESTS)
    assert sorted(requests["breach_started"]) == [_day(7).isoformat(), _day(17).isoformat()]
    # day 9: forecasts made on days 6, 7, 8 (all +50 %) -> MAPE 0.5; day 12: made on 9-11 -> 0
    assert summaries[9]["rolling_mape"] == pytest.approx(0.5)
    assert summaries[12]["rolling_mape"] == pytest.approx(0.0)
    # day 10: made on 7 (+50 %), 8 (+50 %), 9 (0) -> 1/3
    assert summaries[10]["rolling_mape"] == pytest.approx(1 / 3)
    daily = _table(home, DAILY)
    assert len(daily) == DAYS and daily["logical_date"].is_unique

    # accuracy rows carry the horizon: the forecast for day 25 made on day 22 is h = 3
    acc = _table(home, ACCURACY)
    made, for_day = (pd.to_datetime(acc[c]).dt.date for c in ("logical_date", "forecast_date"))
    row = acc[(made == _day(22)) & (for_day == _day(25))]
    assert row["horizon_days"].tolist() == [3] and row["ape"].tolist() == [0.0]

    # retention: on day 25 with 10 days' retention, forecasts made before day 15 are archived
    live, archive = _table(home, HISTORY), _table(home, f"{HISTORY}_archive")
    cutoff = _day(DAYS) - dt.timedelta(days=10)
    assert (pd.to_datetime(live["logical_date"]).dt.date >= cutoff).all()
    assert (pd.to_datetime(archive["logical_date"]).dt.date < cutoff).all()
    everything = pd.concat([live, archive])
    keys = set(zip(pd.to_datetime(everything["logical_date"]).dt.date,
                   pd.to_datetime(everything["forecast_date"]).dt.date, strict=True))  # fmt: skip
    expected = {(_day(n), _day(n + h)) for n in range(1, DAYS + 1) for h in (1, 2, 3)}
    assert keys == expected and len(everything) == len(expected)  # nothing lost, nothing doubled
    assert len(live) == 3 * 11  # days 15..25 stay live

    # the Prometheus textfile holds the last day's figures
    prom = (home / "metrics" / "uc09_accuracy.prom").read_text()
    assert "smepulse_uc09_forecast_rolling_mape 0.0" in prom
    assert "smepulse_uc09_accuracy_breached 0.0" in prom
