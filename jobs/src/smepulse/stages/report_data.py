"""What the run report shows, read from the warehouse and the dbt results files.

Every section degrades on its own: a table that does not exist yet (ml-predict has never run,
dbt failed) becomes ``None`` and the template says "not available yet" — the report never
crashes on missing data. ML output column names are matched by role (date, value, interval)
so the report keeps working if a model stage renames a column.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smepulse.settings import Settings
from smepulse.warehouse import Warehouse

log = logging.getLogger(__name__)

DBT_STAGES = (
    "dbt-silver", "dbt-gold-dims", "dbt-gold-facts", "dbt-gold-links", "dbt-gold-kpis",
    "dbt-ml-scores", "dbt-external-silver", "dbt-external-gold",
)  # fmt: skip


@dataclass
class ReportData:
    """Everything the templates need; ``None`` means "not available yet"."""

    pipeline: str
    run_id: str | None
    logical_date: dt.date
    generated_at: dt.datetime
    gold_tables: list[tuple[str, int]] | None = None
    dbt: list[dict[str, Any]] = field(default_factory=list)
    kpis: list[tuple[str, str, str]] = field(default_factory=list)  # label, value, note
    priority: pd.DataFrame | None = None
    priority_bands: dict[str, int] | None = None
    # columns: date, value, lower, upper (+ model_name, model_version, model_kind when written)
    forecast: pd.DataFrame | None = None
    history: pd.DataFrame | None = None  # columns: date, value (net cash flow)
    # book-based forecast: forecast_date, component, amount_vnd, detail (None: not a book model)
    components: pd.DataFrame | None = None
    accuracy: pd.DataFrame | None = None  # logical_date, rolling_mape, rolling_mase, threshold_mape
    anomalies: pd.DataFrame | None = None
    anomaly_count: int | None = None
    problems: list[str] = field(default_factory=list)


def _safe(data: ReportData, what: str, fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # one section missing must not hide the others
        log.info("report: %s not available: %s", what, exc)
        data.problems.append(
            f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        )
        return None


def _pick(frame: pd.DataFrame, *candidates: str, contains: str | None = None) -> str | None:
    cols = {c.lower(): c for c in frame.columns}
    for name in candidates:
        if name in cols:
            return cols[name]
    if contains:
        for low, col in cols.items():
            if contains in low:
                return col
    return None


def gold_tables(wh: Warehouse, schema: str) -> list[tuple[str, int]]:
    names = wh.query(
        f"select table_name from information_schema.tables where table_schema = '{schema}' order by table_name"
    )["table_name"].tolist()
    if not names:
        return []
    union = " union all ".join(f"select '{n}' as t, count(*) as n from {schema}.{n}" for n in names)
    counts = wh.query(union)
    return [
        (str(t), int(n)) for t, n in zip(counts["t"].tolist(), counts["n"].tolist(), strict=True)
    ]


def dbt_results(folder: Path) -> list[dict[str, Any]]:
    """One summary per dbt stage results file (dbt's run_results.json shape, or a list)."""
    summaries: list[dict[str, Any]] = []
    for stage in DBT_STAGES:
        path = folder / f"{stage}.json"
        if not path.exists():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            summaries.append({"stage": stage, "error": f"unreadable: {exc}"})
            continue
        # Our dbt runner's summary lists "nodes"; dbt's own run_results.json lists "results".
        results = (doc.get("nodes") or doc.get("results") or []) if isinstance(doc, dict) else doc
        models: dict[str, int] = {}
        tests: dict[str, int] = {}
        failing = []
        for r in results if isinstance(results, list) else []:
            uid = str(r.get("unique_id") or r.get("name") or "")
            kind = r.get("resource_type") or r.get("type") or uid.split(".", 1)[0]
            status = str(r.get("status", "?")).lower()
            bucket = tests if kind in ("test", "unit_test") else models
            bucket[status] = bucket.get(status, 0) + 1
            if kind in ("test", "unit_test") and status not in ("pass", "success"):
                failing.append(f"{uid.split('.')[-1] or uid} ({status})")
        summaries.append(
            {"stage": stage, "models": models, "tests": tests, "failing": failing[:10]}
        )
    return summaries


def _day(value: Any) -> dt.date:
    """A DATE cell as a date (DuckDB hands dates to pandas as midnight timestamps)."""
    return pd.Timestamp(value).date()


def _fmt_vnd(value: float) -> str:
    sign = "-" if value < 0 else ""
    v = abs(value)
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if v >= size:
            return f"{sign}{v / size:,.2f} {unit} VND"
    return f"{sign}{v:,.0f} VND"


def kpis(wh: Warehouse, g: str, day: dt.date, data: ReportData) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    rev = _safe(data, "kpi_daily_revenue", lambda: wh.query(
        f"select * from {g}.kpi_daily_revenue where revenue_date <= date '{day}' order by revenue_date desc limit 1"))  # fmt: skip
    if rev is not None and len(rev):
        r = rev.iloc[0]
        out.append(
            (
                "Net revenue (7 days)",
                _fmt_vnd(float(r["net_revenue_7d_vnd"])),
                f"to {_day(r['revenue_date'])}",
            )
        )
        out.append(("Net revenue (month to date)", _fmt_vnd(float(r["net_revenue_mtd_vnd"])), ""))
    age = _safe(
        data,
        "kpi_ar_ageing",
        lambda: wh.query(f"select * from {g}.kpi_ar_ageing order by bucket_order"),
    )
    if age is not None and len(age):
        total = float(age["total_outstanding_vnd"].iloc[0])
        late = float(age.loc[age["ageing_bucket"] == "90+", "outstanding_vnd"].sum())
        out.append(
            (
                "Open receivables",
                _fmt_vnd(total),
                f"{late / total:.0%} over 90 days" if total else "",
            )
        )
        out.append(
            ("DSO", f"{float(age['dso_days'].iloc[0]):.0f} days", "open AR / 90-day invoicing")
        )
    cash = _safe(data, "kpi_daily_cash_flow", lambda: wh.query(
        f"select cash_direction, sum(amount_vnd) as amount from {g}.kpi_daily_cash_flow "
        f"where cash_date > date '{day}' - interval 7 day and cash_date <= date '{day}' group by 1"))  # fmt: skip
    if cash is not None and len(cash):
        flows = dict(zip(cash["cash_direction"], cash["amount"].astype(float), strict=False))
        net = flows.get("inflow", 0.0) - flows.get("outflow", 0.0)
        out.append(
            ("Net cash flow (7 days)", _fmt_vnd(net), f"in {_fmt_vnd(flows.get('inflow', 0.0))}")
        )
    wc = _safe(data, "kpi_working_capital", lambda: wh.query(
        f"select * from {g}.kpi_working_capital order by month_start_date desc limit 1"))  # fmt: skip
    if wc is not None and len(wc):
        r = wc.iloc[0]
        out.append(
            (
                "Net working capital",
                _fmt_vnd(float(r["net_working_capital_vnd"])),
                f"month of {_day(r['month_start_date']):%Y-%m}",
            )
        )
    return out


def forecast(wh: Warehouse, g: str) -> pd.DataFrame:
    raw = wh.query(f"select * from {g}.ml_cashflow_forecast")
    date = _pick(raw, "forecast_date", "ds", "cash_date", "date", contains="date")
    value = _pick(raw, "yhat_vnd", "yhat", "net_vnd_forecast", contains="yhat")
    lower = _pick(raw, "yhat_lower_vnd", "yhat_lower", contains="lower")
    upper = _pick(raw, "yhat_upper_vnd", "yhat_upper", contains="upper")
    if not (date and value):
        raise ValueError(f"ml_cashflow_forecast has no date/value columns: {list(raw.columns)}")
    out = pd.DataFrame({"date": pd.to_datetime(raw[date]), "value": raw[value].astype(float)})
    out["lower"] = raw[lower].astype(float) if lower else out["value"]
    out["upper"] = raw[upper].astype(float) if upper else out["value"]
    for column in ("model_name", "model_version", "model_kind"):  # which model made each day
        if column in raw.columns:
            out[column] = raw[column].astype(str)
    return out.sort_values("date").reset_index(drop=True)


def history(wh: Warehouse, g: str, day: dt.date, days: int = 90) -> pd.DataFrame:
    raw = wh.query(
        "select cash_date as date, sum(case when cash_direction = 'inflow' then amount_vnd else -amount_vnd end) as value "
        f"from {g}.kpi_daily_cash_flow where cash_date > date '{day}' - interval {days} day "
        f"and cash_date <= date '{day}' group by 1 order by 1"
    )
    return pd.DataFrame({"date": pd.to_datetime(raw["date"]), "value": raw["value"].astype(float)})


def anomalies(wh: Warehouse, g: str) -> tuple[pd.DataFrame, int]:
    raw = wh.query(f"select * from {g}.ml_anomaly_alerts")
    score = _pick(raw, "anomaly_score", "score", contains="score")
    if score:
        raw = raw.sort_values(score, ascending=False)
    keep = [c for c in ("txn_id", "txn_at", "bank_account_id", "amount_vnd", "counterparty", "category",
                        score, "reasons", "reason", "model_name", "model_version")
            if c and c in raw.columns]  # fmt: skip
    top = (raw[keep] if keep else raw).head(15).reset_index(drop=True)
    # The warehouse keeps UTC; the reasons speak local time: say which is which.
    return top.rename(columns={"txn_at": "txn_at (UTC)"}), len(raw)


def gather(settings: Settings, wh: Warehouse) -> ReportData:
    """Read every section; never raises for missing tables."""
    day = settings.business_date
    g = settings.gold_schema
    data = ReportData(
        pipeline=settings.pipeline or "daily-etl",
        run_id=settings.run_id,
        logical_date=day,
        generated_at=dt.datetime.now(dt.UTC),
    )
    if settings.warehouse == "duckdb" and not settings.warehouse_path.exists():
        data.problems.append(
            f"warehouse {settings.warehouse_path} does not exist yet: run daily-etl first"
        )
        data.dbt = dbt_results(settings.home / "dbt")
        return data
    data.gold_tables = _safe(data, "gold tables", lambda: gold_tables(wh, g))
    data.dbt = dbt_results(settings.home / "dbt")
    data.kpis = kpis(wh, g, day, data)
    cols = "priority_rank, invoice_id, customer_name, due_date, days_overdue, outstanding_vnd, priority_score, priority_band, reason"
    data.priority = _safe(data, "ml_ar_priority_scores", lambda: wh.query(
        f"select {cols} from {g}.ml_ar_priority_scores order by priority_rank limit 10"))  # fmt: skip
    bands = _safe(data, "priority bands", lambda: wh.query(
        f"select priority_band, count(*) as n from {g}.ml_ar_priority_scores group by 1"))  # fmt: skip
    if bands is not None:
        data.priority_bands = {str(r.priority_band): int(r.n) for r in bands.itertuples()}
    data.forecast = _safe(data, "ml_cashflow_forecast", lambda: forecast(wh, g))
    data.history = _safe(data, "cash-flow history", lambda: history(wh, g, day))
    # optional tables: written only by a book-based champion / once forecasts are scored
    if _safe(
        data, "forecast components", lambda: wh.table_exists(g, "ml_cashflow_forecast_components")
    ):
        data.components = _safe(data, "forecast components", lambda: wh.query(
            "select forecast_date, component, amount_vnd, detail "
            f"from {g}.ml_cashflow_forecast_components order by forecast_date, component"))  # fmt: skip
    if _safe(data, "forecast accuracy", lambda: wh.table_exists(g, "ml_cashflow_accuracy_daily")):
        data.accuracy = _safe(data, "forecast accuracy", lambda: wh.query(
            "select logical_date, rolling_mape, rolling_mase, threshold_mape, is_breached "
            f"from {g}.ml_cashflow_accuracy_daily where logical_date <= '{day.isoformat()}' "
            "order by logical_date"))  # fmt: skip
    found = _safe(data, "ml_anomaly_alerts", lambda: anomalies(wh, g))
    if found is not None:
        data.anomalies, data.anomaly_count = found
    return data
