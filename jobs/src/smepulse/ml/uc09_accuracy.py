"""UC09 accuracy monitoring, the retrain trigger, and retention of old forecasts and alerts.

Tables (gold schema):

* ``ml_cashflow_forecast_history`` — every forecast ``uc09-forecast`` wrote, one row per
  (``logical_date`` it was made on, ``forecast_date``); a re-run of a date replaces that date's
  rows (idempotent).
* ``ml_cashflow_forecast_accuracy`` — each past forecast day whose date has been realised,
  scored against the realised net cash flow: ``horizon_days``, actual, error, absolute error,
  absolute percentage error (NULL when the actual is 0).
* ``ml_cashflow_accuracy_daily`` — one row per logical date: rolling MAPE and MASE over the
  forecast days of the last ``ml_accuracy_window_days``, the threshold, ``is_breached`` and
  ``breach_started`` (first day of the current breach).
* ``ml_retrain_requests`` — one row per breach: the ml-training run it requested.
* ``*_archive`` — rows of the history/accuracy/alert tables older than
  ``ml_archive_after_days`` (by logical date), moved there by :func:`archive`.

MASE here divides the mean absolute error by the mean absolute lag-7 difference of the
realised series before the window (the same scale as the backtest); MAPE is the seed's
figure (meaningless near zero, kept because the seed's retrain rule names it).

The retrain trigger: when the rolling MAPE crosses ``ml_accuracy_mape_threshold`` and no
request exists for the current breach, one ml-training run is requested — a local run
(``smepulse run ml-training``, detached, log beside the run history) on the embedded stack,
a PipelineRun (deterministic name, so a duplicate is a no-op) on the cluster. A breach ends
when accuracy is back under the threshold; the next crossing is a new breach.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd

from smepulse.ml.data import UC09_TABLE
from smepulse.settings import Settings
from smepulse.warehouse import Warehouse, get_warehouse

log = logging.getLogger(__name__)
HISTORY = "ml_cashflow_forecast_history"
ACCURACY = "ml_cashflow_forecast_accuracy"
DAILY = "ml_cashflow_accuracy_daily"
REQUESTS = "ml_retrain_requests"
ALERTS = "ml_anomaly_alerts"


def _read(warehouse: Warehouse, schema: str, table: str) -> pd.DataFrame:
    if not warehouse.table_exists(schema, table):
        return pd.DataFrame()
    return warehouse.query(f"select * from {schema}.{table}")


def _as_date(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).dt.date


def record_forecast(settings: Settings, rows: pd.DataFrame) -> None:
    """Keep ``rows`` (one logical date's forecast) in the history, replacing that date's rows."""
    warehouse = get_warehouse(settings)
    old = _read(warehouse, settings.gold_schema, HISTORY)
    logical = rows["logical_date"].iloc[0]
    keep = old[_as_date(old["logical_date"]) != logical] if not old.empty else old
    new = rows[
        ["logical_date", "forecast_date", "yhat_vnd", "yhat_lower_vnd", "yhat_upper_vnd"]
    ].assign(
        model_version=rows["model_version"].astype(str),
        model_kind=rows["model_kind"].astype(str),
    )
    frame = pd.concat([keep, new], ignore_index=True) if not keep.empty else new
    frame["logical_date"] = _as_date(frame["logical_date"])
    frame["forecast_date"] = _as_date(frame["forecast_date"])
    warehouse.replace_table(
        settings.gold_schema, HISTORY, frame.sort_values(["logical_date", "forecast_date"])
    )


def score(settings: Settings) -> dict[str, float | bool | str | None]:
    """Score the history against realised cash flow up to the logical date; returns the
    day's summary row (also written to ``ml_cashflow_accuracy_daily``)."""
    logical = settings.business_date
    warehouse = get_warehouse(settings)
    gold, silver = settings.gold_schema, settings.silver_schema
    history = _read(warehouse, gold, HISTORY)
    actual = warehouse.query(
        f"select cash_date, net_vnd from {silver}.{UC09_TABLE} "
        f"where cash_date <= date '{logical.isoformat()}' order by cash_date"
    )
    actual["cash_date"] = _as_date(actual["cash_date"])
    realised = dict(zip(actual["cash_date"], actual["net_vnd"].astype(float), strict=True))
    window_start = logical - dt.timedelta(days=settings.ml_accuracy_window_days - 1)
    summary: dict[str, float | bool | str | None] = {
        "logical_date": logical.isoformat(),
        "n_scored": 0,
        "rolling_mape": None,
        "rolling_mase": None,
        "threshold_mape": settings.ml_accuracy_mape_threshold,
        "is_breached": False,
        "breach_started": None,
    }
    if not history.empty:
        history["logical_date"] = _as_date(history["logical_date"])
        history["forecast_date"] = _as_date(history["forecast_date"])
        done = history[
            history["forecast_date"].map(lambda d: d in realised)
            & (history["forecast_date"] > history["logical_date"])
        ]
        acc = done.assign(
            horizon_days=[
                (f - m).days
                for f, m in zip(done["forecast_date"], done["logical_date"], strict=True)
            ],
            actual_vnd=done["forecast_date"].map(realised),
        )
        acc["error_vnd"] = acc["actual_vnd"] - acc["yhat_vnd"].astype(float)
        acc["abs_error_vnd"] = acc["error_vnd"].abs()
        acc["ape"] = np.where(
            acc["actual_vnd"] != 0,
            acc["abs_error_vnd"] / acc["actual_vnd"].abs().where(acc["actual_vnd"] != 0, 1.0),
            np.nan,
        )
        acc["is_covered"] = (acc["actual_vnd"] >= acc["yhat_lower_vnd"].astype(float)) & (
            acc["actual_vnd"] <= acc["yhat_upper_vnd"].astype(float)
        )
        warehouse.replace_table(gold, ACCURACY, acc.sort_values(["logical_date", "forecast_date"]))
        recent = acc[acc["forecast_date"] >= window_start]
        before = actual[actual["cash_date"] < window_start]["net_vnd"].astype(float).to_numpy()
        scale = (
            float(np.mean(np.abs(before[7:] - before[:-7]))) if len(before) > 7 else float("nan")
        )
        if len(recent):
            summary["n_scored"] = len(recent)
            summary["rolling_mape"] = (
                float(np.nanmean(recent["ape"])) if recent["ape"].notna().any() else None
            )
            summary["rolling_mase"] = (
                float(recent["abs_error_vnd"].mean() / scale) if scale > 0 else None
            )
    daily = _read(warehouse, gold, DAILY)
    if not daily.empty:
        daily["logical_date"] = _as_date(daily["logical_date"]).astype(str)
        daily = daily[daily["logical_date"] != logical.isoformat()]
    mape = summary["rolling_mape"]
    breached = isinstance(mape, float) and mape > settings.ml_accuracy_mape_threshold
    summary["is_breached"] = breached
    if breached:
        earlier = (
            daily[daily["logical_date"] < logical.isoformat()].sort_values("logical_date")
            if not daily.empty
            else daily
        )
        last = earlier.iloc[-1] if len(earlier) else None
        continuing = (
            last is not None
            and bool(last["is_breached"])
            and (dt.date.fromisoformat(str(last["logical_date"])) == logical - dt.timedelta(days=1))
        )
        summary["breach_started"] = (
            str(last["breach_started"]) if continuing and last is not None else logical.isoformat()
        )
    row = pd.DataFrame([summary])
    frame = pd.concat([daily, row], ignore_index=True) if not daily.empty else row
    frame = frame.astype({"n_scored": "int64", "is_breached": "bool"})
    warehouse.replace_table(gold, DAILY, frame.sort_values("logical_date"))
    return summary


def _launch_local(settings: Settings, logical: dt.date, breach: str) -> str:
    log_dir = settings.home / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = log_dir / f"retrain-{breach}.log"
    with out.open("ab") as fh:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smepulse.cli",
                "run",
                "ml-training",
                "--logical-date",
                logical.isoformat(),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return f"local ml-training for {logical} (log {out})"


def _launch_cluster(settings: Settings, logical: dt.date, breach: str) -> str:
    from smepulse_operator.submit import submit_run

    name = submit_run(
        settings, "ml-training", logical, {"reason": f"uc09-accuracy-breach-{breach}"}
    )
    return f"PipelineRun {name}"


Launcher = Callable[[Settings, dt.date, str], str]


def default_launcher(settings: Settings) -> Launcher:
    """A PipelineRun on the cluster (Trino warehouse), a detached local run otherwise."""
    return _launch_cluster if settings.warehouse == "trino" else _launch_local


def request_retrain(
    settings: Settings,
    summary: dict[str, float | bool | str | None],
    launcher: Launcher | None = None,
) -> bool:
    """Request one ml-training run for the current breach, unless one was already requested.

    Returns True when a request was made now. ``launcher(settings, logical_date, breach)``
    starts the run and says what it started (default: :func:`default_launcher`).
    """
    if not summary["is_breached"]:
        return False
    breach = str(summary["breach_started"])
    warehouse = get_warehouse(settings)
    requests = _read(warehouse, settings.gold_schema, REQUESTS)
    if not requests.empty and breach in set(requests["breach_started"].astype(str)):
        log.info("UC09 accuracy breach since %s: retraining already requested", breach)
        return False
    logical = settings.business_date
    what = (launcher or default_launcher(settings))(settings, logical, breach)
    row = pd.DataFrame(
        [
            {
                "breach_started": breach,
                "logical_date": logical.isoformat(),
                "rolling_mape": summary["rolling_mape"],
                "threshold_mape": summary["threshold_mape"],
                "requested": what,
                "requested_at": pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"),
            }
        ]
    )
    frame = pd.concat([requests, row], ignore_index=True) if not requests.empty else row
    warehouse.replace_table(settings.gold_schema, REQUESTS, frame)
    log.warning(
        "UC09 rolling MAPE %.3f above %.3f since %s: requested %s",
        summary["rolling_mape"],
        summary["threshold_mape"],
        breach,
        what,
    )
    return True


def archive(settings: Settings) -> dict[str, int]:
    """Move rows older than ``ml_archive_after_days`` (by logical date) to ``<table>_archive``.

    The archive is appended to first and the live table rewritten after, so an interruption can
    duplicate rows in the archive (harmless: de-duplicated on the next call) but never lose
    them. Returns rows moved per table.
    """
    cutoff = settings.business_date - dt.timedelta(days=settings.ml_archive_after_days)
    warehouse = get_warehouse(settings)
    gold = settings.gold_schema
    moved: dict[str, int] = {}
    for table in (HISTORY, ACCURACY, ALERTS):
        live = _read(warehouse, gold, table)
        if live.empty or "logical_date" not in live.columns:
            continue
        old = _as_date(live["logical_date"]) < cutoff
        moved[table] = int(old.sum())
        if not old.any():
            continue
        archived = _read(warehouse, gold, f"{table}_archive")
        both = (
            pd.concat([archived, live[old]], ignore_index=True) if not archived.empty else live[old]
        )
        warehouse.replace_table(gold, f"{table}_archive", both.drop_duplicates())
        warehouse.replace_table(gold, table, live[~old].reset_index(drop=True))
        log.info("archived %d rows of %s.%s older than %s", moved[table], gold, table, cutoff)
    return moved


def write_metrics(settings: Settings, summary: dict[str, float | bool | str | None]) -> None:
    """The rolling figures as Prometheus gauges in ``<home>/metrics/uc09_accuracy.prom`` (text
    format, for node-exporter's textfile collector: a stage Job is too short-lived to scrape)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    for name, doc, value in (
        (
            "smepulse_uc09_forecast_rolling_mape",
            "Rolling MAPE of past UC09 forecasts",
            summary["rolling_mape"],
        ),
        (
            "smepulse_uc09_forecast_rolling_mase",
            "Rolling MASE of past UC09 forecasts",
            summary["rolling_mase"],
        ),
        (
            "smepulse_uc09_accuracy_breached",
            "1 while rolling MAPE is above the threshold",
            float(bool(summary["is_breached"])),
        ),
    ):
        Gauge(name, doc, registry=registry).set(float("nan") if value is None else float(value))
    path = settings.home / "metrics" / "uc09_accuracy.prom"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def monitor(
    settings: Settings, launcher: Launcher | None = None
) -> dict[str, float | bool | str | None]:
    """What ``uc09-forecast`` runs after writing the forecast: score, metrics, trigger, archive."""
    summary = score(settings)
    write_metrics(settings, summary)
    summary["retrain_requested"] = request_retrain(settings, summary, launcher)
    archive(settings)
    return summary
