"""Small synthetic inputs for the ML tests, shaped like the silver training sets.

Independent of the real generator and dbt, so the ML tests run on their own. Deterministic for
a given seed. Amounts are whole VND.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def daily_cashflow(
    days: int = 200, end: dt.date = dt.date(2026, 6, 30), seed: int = 1
) -> pd.DataFrame:
    """``silver.ml_training_uc09_daily_cashflow``: weekly pattern, growth, month-end payroll."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    weekday = np.array([1.0, 1.1, 1.05, 1.0, 1.2, 0.6, 0.2])[dates.weekday]
    trend = np.linspace(1.0, 1.3, days)
    inflow = 50e6 * weekday * trend * rng.lognormal(0, 0.15, days)
    outflow = 35e6 * weekday * trend * rng.lognormal(0, 0.2, days)
    outflow += np.where(dates.day == 28, 120e6, 0.0)  # payroll
    frame = pd.DataFrame(
        {
            "cash_date": dates.date,
            "inflow_vnd": np.round(inflow),
            "outflow_vnd": np.round(outflow),
            "n_transactions": rng.integers(20, 60, days).astype("int32"),
        }
    )
    frame["net_vnd"] = frame["inflow_vnd"] - frame["outflow_vnd"]
    return frame[["cash_date", "inflow_vnd", "outflow_vnd", "net_vnd", "n_transactions"]]


def transactions(
    days: int = 120, end: dt.date = dt.date(2026, 6, 30), per_day: int = 25, seed: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``silver.ml_training_uc10_transactions`` and planted labels (txn_id, anomaly_type, txn_date).

    About 4 % of transactions are anomalies of the four kinds the real generator plants.
    """
    rng = np.random.default_rng(seed)
    customers = [f"Customer {i:03d}" for i in range(40)]
    suppliers = [f"Supplier {i:03d}" for i in range(15)]
    typical = {name: float(rng.lognormal(16.5, 0.6)) for name in customers + suppliers}
    start = pd.Timestamp(end) - pd.Timedelta(days=days - 1)
    rows: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    n = 0
    for day in pd.date_range(start, periods=days, freq="D"):
        for _ in range(int(rng.poisson(per_day))):
            n += 1
            is_in = rng.random() < 0.6
            party = str(rng.choice(customers if is_in else suppliers))
            amount = round(typical[party] * float(rng.lognormal(0, 0.25)), -3) + float(
                rng.integers(1, 999)
            )
            local = day + pd.Timedelta(hours=float(rng.uniform(8, 18)))
            rows.append(
                _row(
                    n,
                    local,
                    amount if is_in else -amount,
                    party,
                    "sales_receipt" if is_in else "supplier_payment",
                )
            )
            if rng.random() < 0.04:
                n += 1
                kind = str(
                    rng.choice(
                        ["duplicate", "amount_outlier", "unusual_hour", "round_new_counterparty"]
                    )
                )
                base = rows[-1]
                if kind == "duplicate":
                    rows.append(
                        {
                            **base,
                            "txn_id": f"T{n:06d}",
                            "txn_at": base["txn_at"] + pd.Timedelta(minutes=7),
                        }
                    )  # type: ignore[operator]
                elif kind == "amount_outlier":
                    rows.append(
                        _row(
                            n,
                            local + pd.Timedelta(minutes=30),
                            float(base["amount_vnd"]) * 15,
                            party,
                            str(base["category"]),
                        )
                    )  # type: ignore[arg-type]
                elif kind == "unusual_hour":
                    night = day + pd.Timedelta(hours=float(rng.uniform(1, 4)))
                    rows.append(
                        _row(n, night, float(base["amount_vnd"]), party, str(base["category"]))
                    )  # type: ignore[arg-type]
                else:
                    rows.append(
                        _row(
                            n,
                            local + pd.Timedelta(hours=1),
                            -float(rng.integers(2, 9)) * 10_000_000,
                            f"New Co {n}",
                            "other",
                        )
                    )
                labels.append({"txn_id": f"T{n:06d}", "anomaly_type": kind, "txn_date": day.date()})
    frame = pd.DataFrame(rows)
    return frame, pd.DataFrame(labels, columns=["txn_id", "anomaly_type", "txn_date"])


def _row(
    n: int, local: pd.Timestamp, amount: float, party: str, category: str
) -> dict[str, object]:
    utc = (local - pd.Timedelta(hours=7)).floor("s")  # Asia/Ho_Chi_Minh is UTC+7, no DST
    return {
        "txn_id": f"T{n:06d}",
        "bank_account_id": "BA01",
        "txn_at": utc,
        "amount_vnd": float(round(amount)),
        "counterparty": party,
        "category": category,
        "description": "",
        "reference_id": None,
    }
