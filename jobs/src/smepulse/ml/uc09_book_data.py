"""The receivables/payables book and the bank feed the book-based UC09 model learns from.

:class:`BookData` holds every dated row the model needs, read once from the silver staging
views; :meth:`BookData.as_of` cuts it to what was known at a cut-off, so a backtest fold sees
the book as it was on that day. Dates are integer day numbers (days since 1970-01-01, local
business dates), which keeps the per-fold arithmetic in numpy.

Point in time, at cut-off ``c``:

* invoices/bills count when issued on or before ``c``; a cancellation counts only when the
  row's ``updated_at`` (local date) is on or before ``c`` (the row's newest version is the
  cancellation, so an earlier ``updated_at`` means it was already cancelled);
* payments count when dated on or before ``c`` — what was still owed at ``c`` is
  ``total − payments ≤ c`` (so a later ``status = paid`` never leaks into an earlier fold);
* bank rows count when booked (local date) on or before ``c``.

This is the row-level form of the point-in-time rule of issue #15 (ingests ≤ D, ``updated_at``
within D + lag): silver itself is read as of the training run's logical date, and the folds
inside that run are cut by the dated columns above.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

EPOCH = dt.date(1970, 1, 1)
RECURRING_CATEGORIES = ("payroll", "rent", "tax", "utilities")


def day_number(value: dt.date) -> int:
    return (value - EPOCH).days


def day_date(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(number))


def _days(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series).to_numpy().astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class BookData:
    """Dated frames; every ``*_day`` column is an int64 day number.

    * ``invoices``: invoice_id, customer_id, segment, issue_day, due_day, total, cancelled_day
      (day the cancellation became known; a large number when not cancelled)
    * ``ar_payments``: invoice_id, pay_day, amount
    * ``bills``: bill_id, supplier_id, issue_day, due_day, total, cancelled_day
    * ``ap_payments``: bill_id, pay_day, amount
    * ``bank``: cash_day, amount (signed), category, invoice_id / bill_id (the AR/AP document
      a receipt or supplier payment settles, via its reference_id; empty string if none)
    * ``names``: party_id → display name (customers and suppliers)
    """

    invoices: pd.DataFrame
    ar_payments: pd.DataFrame
    bills: pd.DataFrame
    ap_payments: pd.DataFrame
    bank: pd.DataFrame
    names: dict[str, str]

    def as_of(self, cutoff: int) -> BookData:
        """Only what was known at the end of day ``cutoff`` (see the module docstring)."""
        return replace(
            self,
            invoices=self.invoices[self.invoices["issue_day"] <= cutoff],
            ar_payments=self.ar_payments[self.ar_payments["pay_day"] <= cutoff],
            bills=self.bills[self.bills["issue_day"] <= cutoff],
            ap_payments=self.ap_payments[self.ap_payments["pay_day"] <= cutoff],
            bank=self.bank[self.bank["cash_day"] <= cutoff],
        )

    def daily_net(self, first: int, last: int) -> pd.Series:
        """Signed bank total per day ``first..last`` (zeros on quiet days), indexed by day."""
        bank = self.bank[(self.bank["cash_day"] >= first) & (self.bank["cash_day"] <= last)]
        net = bank.groupby("cash_day")["amount"].sum()
        return net.reindex(np.arange(first, last + 1), fill_value=0.0).astype(float)

    def __len__(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self) if f.name != "names")


NOT_CANCELLED = np.iinfo(np.int64).max // 2


def _documents(frame: pd.DataFrame, key: str, party: str, tz: str) -> pd.DataFrame:
    updated = pd.to_datetime(frame["updated_at"]).dt.tz_localize("UTC").dt.tz_convert(tz)
    cancelled = frame["status"].astype(str) == "cancelled"
    return pd.DataFrame(
        {
            key: frame[key].astype(str),
            party: frame[party].astype(str),
            "issue_day": _days(frame["issue_date"]),
            "due_day": _days(frame["due_date"]),
            "total": frame["total_amount_vnd"].astype(float),
            "cancelled_day": np.where(
                cancelled, _days(updated.dt.tz_localize(None)), NOT_CANCELLED
            ),
        }
    )


def load_book(settings: Settings, end: dt.date) -> BookData:
    """The book and bank feed up to ``end`` from the silver staging views."""
    schema = settings.silver_schema
    warehouse = get_warehouse(settings)
    for view in ("stg_bronze__ar_invoices", "stg_bronze__bank_transactions"):
        if not warehouse.table_exists(schema, view):
            raise StageError(
                f"{schema}.{view} is not in the warehouse: run the daily-etl pipeline "
                "(stage dbt-silver) first"
            )
    q = warehouse.query
    end_s = end.isoformat()
    # Every read in a fixed order: the model's simulated payment days are drawn per document
    # in row order (seeded), so the same data must give the same forecast on every run.
    customers = q(
        "select customer_id, customer_name, segment "
        f"from {schema}.stg_bronze__customers order by customer_id"
    )
    suppliers = q(
        f"select supplier_id, supplier_name from {schema}.stg_bronze__suppliers order by supplier_id"
    )
    inv = q(
        "select invoice_id, customer_id, issue_date, due_date, total_amount_vnd, status, "
        f"updated_at from {schema}.stg_bronze__ar_invoices where issue_date <= date '{end_s}' "
        "order by invoice_id"
    )
    bills = q(
        "select bill_id, supplier_id, issue_date, due_date, total_amount_vnd, status, "
        f"updated_at from {schema}.stg_bronze__ap_bills where issue_date <= date '{end_s}' "
        "order by bill_id"
    )
    arp = q(
        "select payment_id, invoice_id, payment_date, amount_vnd "
        f"from {schema}.stg_bronze__ar_payments where payment_date <= date '{end_s}' "
        "order by payment_id"
    )
    app = q(
        "select payment_id, bill_id, payment_date, amount_vnd "
        f"from {schema}.stg_bronze__ap_payments where payment_date <= date '{end_s}' "
        "order by payment_id"
    )
    bound = (end + dt.timedelta(days=2)).isoformat()
    bank = q(
        "select txn_at, amount_vnd, category, reference_id from "
        f"{schema}.stg_bronze__bank_transactions where txn_at < timestamp '{bound} 00:00:00' "
        "order by txn_id"
    )
    local = pd.to_datetime(bank["txn_at"]).dt.tz_localize("UTC").dt.tz_convert(settings.timezone)
    bank_days = _days(local.dt.tz_localize(None))
    ref = bank["reference_id"].fillna("").astype(str)
    ar_by_payment = dict(
        zip(arp["payment_id"].astype(str), arp["invoice_id"].astype(str), strict=True)
    )
    ap_by_payment = dict(
        zip(app["payment_id"].astype(str), app["bill_id"].astype(str), strict=True)
    )
    bank_frame = pd.DataFrame(
        {
            "cash_day": bank_days,
            "amount": bank["amount_vnd"].astype(float),
            "category": bank["category"].astype(str),
            "invoice_id": ref.map(ar_by_payment).fillna(""),
            "bill_id": ref.map(ap_by_payment).fillna(""),
        }
    )
    bank_frame = bank_frame[bank_frame["cash_day"] <= day_number(end)]
    invoices = _documents(inv, "invoice_id", "customer_id", settings.timezone)
    segment = dict(
        zip(customers["customer_id"].astype(str), customers["segment"].astype(str), strict=True)
    )
    invoices["segment"] = invoices["customer_id"].map(segment).fillna("unknown")
    names = dict(
        zip(
            customers["customer_id"].astype(str),
            customers["customer_name"].astype(str),
            strict=True,
        )
    )
    names.update(
        zip(
            suppliers["supplier_id"].astype(str),
            suppliers["supplier_name"].astype(str),
            strict=True,
        )
    )
    return BookData(
        invoices=invoices,
        ar_payments=pd.DataFrame(
            {
                "invoice_id": arp["invoice_id"].astype(str),
                "pay_day": _days(arp["payment_date"]),
                "amount": arp["amount_vnd"].astype(float),
            }
        ),
        bills=_documents(bills, "bill_id", "supplier_id", settings.timezone),
        ap_payments=pd.DataFrame(
            {
                "bill_id": app["bill_id"].astype(str),
                "pay_day": _days(app["payment_date"]),
                "amount": app["amount_vnd"].astype(float),
            }
        ),
        bank=bank_frame.reset_index(drop=True),
        names=names,
    )
