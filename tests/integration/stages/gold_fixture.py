"""A small gold schema in a real DuckDB file, shaped like dbt's and the ML stages' outputs,
for report tests (the full pipeline is exercised by the e2e tests)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from smepulse.settings import Settings

DAY = dt.date(2025, 6, 30)


def build_gold(settings: Settings, *, with_ml: bool = True, seed: int = 7) -> None:
    """Write KPI, UC05 and (optionally) UC09/UC10 tables into ``settings.warehouse_path``."""
    rng = np.random.default_rng(seed)
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("create schema if not exists gold")
        days = [DAY - dt.timedelta(days=i) for i in range(120)][::-1]
        inflow = rng.normal(400e6, 80e6, len(days)).clip(0)
        outflow = rng.normal(350e6, 90e6, len(days)).clip(0)
        rows = [(d, "inflow", 12, round(i), 0) for d, i in zip(days, inflow, strict=True)]
        rows += [(d, "outflow", 9, round(o), 0) for d, o in zip(days, outflow, strict=True)]
        con.execute(
            "create table gold.kpi_daily_cash_flow (cash_date date, cash_direction varchar, n_transactions int, amount_vnd decimal(18,0), amount_7d_vnd decimal(18,0))"
        )
        con.executemany("insert into gold.kpi_daily_cash_flow values (?, ?, ?, ?, ?)", rows)
        con.execute(
            "create table gold.kpi_daily_revenue as select cash_date as revenue_date, amount_vnd as net_revenue_vnd, "
            "amount_vnd * 7 as net_revenue_7d_vnd, amount_vnd * 20 as net_revenue_mtd_vnd "
            "from gold.kpi_daily_cash_flow where cash_direction = 'inflow'"
        )
        con.execute(
            "create table gold.kpi_ar_ageing as select * from (values "
            "('current', 1, 5200000000, 12000000000, 48.5), ('1-30', 2, 3100000000, 12000000000, 48.5), "
            "('31-60', 3, 1900000000, 12000000000, 48.5), ('61-90', 4, 800000000, 12000000000, 48.5), "
            "('90+', 5, 1000000000, 12000000000, 48.5)) "
            "t(ageing_bucket, bucket_order, outstanding_vnd, total_outstanding_vnd, dso_days)"
        )
        con.execute(
            "create table gold.kpi_working_capital as select date '2025-06-01' as month_start_date, "
            "cast(4200000000 as decimal(18,0)) as net_working_capital_vnd"
        )
        con.execute(
            "create table gold.ml_ar_priority_scores as select i as priority_rank, 'INV-' || lpad(cast(i as varchar), 6, '0') as invoice_id, "
            "'Công ty TNHH Minh An ' || cast(i % 17 as varchar) as customer_name, date '2025-05-01' + (i % 40)::int as due_date, "
            "greatest(0, 60 - i) as days_overdue, cast(900000000 / i as decimal(18,0)) as outstanding_vnd, "
            "greatest(5, 95 - i) as priority_score, case when 95 - i >= 70 then 'high' when 95 - i >= 40 then 'medium' else 'low' end as priority_band, "
            "'overdue ' || cast(greatest(0, 60 - i) as varchar) || ' days' as reason from range(1, 301) r(i)"
        )
        if with_ml:
            future = [DAY + dt.timedelta(days=i) for i in range(1, 31)]
            yhat = rng.normal(50e6, 30e6, 30)
            con.execute(
                "create table gold.ml_cashflow_forecast (forecast_date date, yhat_vnd bigint, yhat_lower_vnd bigint, yhat_upper_vnd bigint, "
                "model_name varchar, model_version varchar, model_kind varchar)"
            )
            con.executemany(
                "insert into gold.ml_cashflow_forecast values (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        d,
                        round(y),
                        round(y - 120e6),
                        round(y + 120e6),
                        "smepulse-uc09-baseline",
                        "3",
                        "seasonal_naive",
                    )
                    for d, y in zip(future, yhat, strict=True)
                ],
            )
            con.execute(
                "create table gold.ml_anomaly_alerts as select 'TXN-' || cast(i as varchar) as txn_id, "
                "timestamp '2025-06-25 10:00:00' + to_hours(i) as txn_at, cast(-1000000 * i * i as decimal(18,0)) as amount_vnd, "
                "'Cửa hàng ' || cast(i as varchar) as counterparty, 'other' as category, 0.5 + i / 100 as anomaly_score, "
                "i as anomaly_rank, 'amount far above usual for counterparty' as reasons from range(1, 21) r(i)"
            )
    finally:
        con.close()
    dbt_dir = settings.home / "dbt"
    dbt_dir.mkdir(parents=True, exist_ok=True)
    # The dbt runner's summary shape (jobs/dbt_results.py: "nodes"), and dbt's run_results shape.
    nodes = [
        {
            "unique_id": f"model.smepulse.kpi_{i}",
            "name": f"kpi_{i}",
            "type": "model",
            "status": "success",
        }
        for i in range(4)
    ]
    nodes += [
        {
            "unique_id": f"test.smepulse.not_null_kpi_{i}",
            "name": f"not_null_kpi_{i}",
            "type": "test",
            "status": "pass",
        }
        for i in range(11)
    ]
    nodes.append(
        {
            "unique_id": "test.smepulse.accepted_range_dso",
            "name": "accepted_range_dso",
            "type": "test",
            "status": "warn",
        }
    )
    (dbt_dir / "dbt-silver.json").write_text(
        json.dumps({"results": [{"unique_id": "model.smepulse.stg_x", "status": "success"}]})
    )
    results = {"nodes": nodes}
    (dbt_dir / "dbt-gold-kpis.json").write_text(json.dumps(results))


def write_report(settings: Settings) -> Path:
    from smepulse.stages import report

    report.run(settings)
    return (
        settings.reports_dir / f"{settings.pipeline or 'daily-etl'}-{settings.business_date}.html"
    )


def build_forecast_components(settings: Settings) -> None:
    """A book-based forecast's components (hand-made, known pattern) and scored accuracy.

    Collections 120 M VND a day from open invoices (the largest item on day 3: 80 M from
    customer "Công ty TNHH Thịnh Hoàng"), payments of bills -90 M on weekdays, payroll -300 M
    on day 5, other inflows 10 M; the forecast table is rewritten as their sum.
    """
    future = [DAY + dt.timedelta(days=i) for i in range(1, 31)]
    rows = []
    for i, day in enumerate(future, start=1):
        rows.append((day, "collections_book", 120e6, "expected collections"))
        rows.append((day, "payments_book", -90e6 if day.weekday() < 5 else 0.0, "payments"))
        rows.append((day, "recurring_payroll", -300e6 if i == 5 else 0.0, "recurring payroll"))
        rows.append((day, "other_in", 10e6, "other in"))
    rows[8] = (
        future[2],
        "collections_book",
        180e6,
        "expected collections: largest 80.0 M VND from 3 open invoices of Công ty TNHH Thịnh Hoàng",
    )
    frame = pd.DataFrame(rows, columns=["forecast_date", "component", "amount_vnd", "detail"])
    net = frame.groupby("forecast_date")["amount_vnd"].sum()
    accuracy = pd.DataFrame(
        {
            "logical_date": [(DAY - dt.timedelta(days=k)).isoformat() for k in range(20, -1, -1)],
            "rolling_mape": np.linspace(0.5, 3.5, 21),
            "rolling_mase": np.linspace(0.6, 0.9, 21),
            "threshold_mape": 2.0,
            "is_breached": np.linspace(0.5, 3.5, 21) > 2.0,
        }
    )
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.register("components", frame)
        con.register("accuracy", accuracy)
        con.execute(
            "create or replace table gold.ml_cashflow_forecast_components as select "
            "cast(forecast_date as date) forecast_date, component, cast(amount_vnd as bigint) amount_vnd, "
            "detail from components"
        )
        con.execute(
            "create or replace table gold.ml_cashflow_accuracy_daily as select * from accuracy"
        )
        con.execute("delete from gold.ml_cashflow_forecast")
        con.executemany(
            "insert into gold.ml_cashflow_forecast values (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d,
                    round(v),
                    round(v - 150e6),
                    round(v + 150e6),
                    "smepulse-uc09-cashflow",
                    "1",
                    "book",
                )
                for d, v in net.items()
            ],
        )
    finally:
        con.close()
