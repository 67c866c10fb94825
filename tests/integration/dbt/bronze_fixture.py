"""A tiny, deterministic bronze data set written to the bronze contract (DESIGN.md).

The dbt integration tests build on this instead of the full synthetic generator: a few
hundred rows, two ingest dates (the second re-delivers some invoices with a newer
``updated_at`` so silver's de-duplication is exercised), and every rule the contract states
(payments never exceed their invoice, non-cash payments appear in the bank feed with
``reference_id = payment_id``, totals = lines + VAT).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_ID = pa.string()
_MONEY = pa.decimal128(18, 0)
_TS = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", _ID),
            ("customer_name", _ID),
            ("tax_code", _ID),
            ("province_code", _ID),
            ("segment", _ID),
            ("credit_limit_vnd", _MONEY),
            ("payment_terms_days", pa.int32()),
            ("created_at", _TS),
            ("updated_at", _TS),
        ]
    ),
    "suppliers": pa.schema(
        [
            ("supplier_id", _ID),
            ("supplier_name", _ID),
            ("tax_code", _ID),
            ("province_code", _ID),
            ("payment_terms_days", pa.int32()),
            ("created_at", _TS),
            ("updated_at", _TS),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", _ID),
            ("sku", _ID),
            ("product_name", _ID),
            ("category", _ID),
            ("unit_price_vnd", _MONEY),
            ("unit_cost_vnd", _MONEY),
            ("vat_rate", pa.decimal128(5, 4)),
            ("is_active", pa.bool_()),
            ("updated_at", _TS),
        ]
    ),
    "ar_invoices": pa.schema(
        [
            ("invoice_id", _ID),
            ("customer_id", _ID),
            ("issue_date", pa.date32()),
            ("due_date", pa.date32()),
            ("channel", _ID),
            ("total_amount_vnd", _MONEY),
            ("vat_amount_vnd", _MONEY),
            ("status", _ID),
            ("updated_at", _TS),
        ]
    ),
    "ar_invoice_lines": pa.schema(
        [
            ("invoice_id", _ID),
            ("line_no", pa.int32()),
            ("product_id", _ID),
            ("quantity", pa.decimal128(18, 3)),
            ("unit_price_vnd", _MONEY),
            ("discount_vnd", _MONEY),
            ("line_amount_vnd", _MONEY),
        ]
    ),
    "ar_payments": pa.schema(
        [
            ("payment_id", _ID),
            ("invoice_id", _ID),
            ("customer_id", _ID),
            ("payment_date", pa.date32()),
            ("amount_vnd", _MONEY),
            ("method", _ID),
            ("bank_account_id", _ID),
            ("updated_at", _TS),
        ]
    ),
    "ap_bills": pa.schema(
        [
            ("bill_id", _ID),
            ("supplier_id", _ID),
            ("issue_date", pa.date32()),
            ("due_date", pa.date32()),
            ("total_amount_vnd", _MONEY),
            ("status", _ID),
            ("updated_at", _TS),
        ]
    ),
    "ap_payments": pa.schema(
        [
            ("payment_id", _ID),
            ("bill_id", _ID),
            ("supplier_id", _ID),
            ("payment_date", pa.date32()),
            ("amount_vnd", _MONEY),
            ("method", _ID),
            ("bank_account_id", _ID),
            ("updated_at", _TS),
        ]
    ),
    "bank_accounts": pa.schema(
        [
            ("bank_account_id", _ID),
            ("bank_name", _ID),
            ("account_no_masked", _ID),
            ("currency", _ID),
            ("updated_at", _TS),
        ]
    ),
    "bank_transactions": pa.schema(
        [
            ("txn_id", _ID),
            ("bank_account_id", _ID),
            ("txn_at", _TS),
            ("amount_vnd", _MONEY),
            ("counterparty", _ID),
            ("description", _ID),
            ("category", _ID),
            ("reference_id", _ID),
            ("updated_at", _TS),
        ]
    ),
}

Rows = dict[str, list[dict[str, Any]]]


def _ts(day: dt.date, hour: int = 3) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def build_rows(end_date: dt.date, seed: int = 7, n_invoices: int = 160) -> tuple[Rows, Rows]:
    """Rows of the first and of the second (correcting) ingest."""
    rng = random.Random(seed)
    start = end_date - dt.timedelta(days=180)
    rows: Rows = {name: [] for name in SCHEMAS}
    late: Rows = {name: [] for name in SCHEMAS}
    created = _ts(start - dt.timedelta(days=30))
    for i in range(12):
        rows["customers"].append(
            {
                "customer_id": f"C{i:03d}",
                "customer_name": f"Khách hàng {i}",
                "tax_code": None if i % 5 == 0 else f"{0o100000000 + i:010d}",
                "province_code": ["1", "79", "48"][i % 3],
                "segment": ["retail", "wholesale", "enterprise"][i % 3],
                "credit_limit_vnd": Decimal(50_000_000 * (1 + i % 4)),
                "payment_terms_days": [15, 30, 45][i % 3],
                "created_at": created,
                "updated_at": created,
            }
        )
    for i in range(5):
        rows["suppliers"].append(
            {
                "supplier_id": f"S{i:03d}",
                "supplier_name": f"Nhà cung cấp {i}",
                "tax_code": f"{i:010d}",
                "province_code": "79",
                "payment_terms_days": 30,
                "created_at": created,
                "updated_at": created,
            }
        )
    for i in range(8):
        price = 100_000 * (1 + i)
        rows["products"].append(
            {
                "product_id": f"P{i:03d}",
                "sku": f"SKU-{i}",
                "product_name": f"Sản phẩm {i}",
                "category": ["food", "tools"][i % 2],
                "unit_price_vnd": Decimal(price),
                "unit_cost_vnd": Decimal(price * 6 // 10),
                "vat_rate": Decimal("0.0800") if i % 2 else Decimal("0.1000"),
                "is_active": i != 7,
                "updated_at": created,
            }
        )
    for i in range(2):
        rows["bank_accounts"].append(
            {
                "bank_account_id": f"B{i}",
                "bank_name": ["Vietcombank", "Techcombank"][i],
                "account_no_masked": f"******{1234 + i}",
                "currency": "VND",
                "updated_at": created,
            }
        )
    txn_no = 0

    def bank(
        day: dt.date, amount: int, category: str, ref: str | None, account: str = "B0"
    ) -> None:
        nonlocal txn_no
        txn_no += 1
        rows["bank_transactions"].append(
            {
                "txn_id": f"T{txn_no:05d}",
                "bank_account_id": account,
                "txn_at": _ts(day, 2 + txn_no % 8),
                "amount_vnd": Decimal(amount),
                "counterparty": "X",
                "description": category,
                "category": category,
                "reference_id": ref,
                "updated_at": _ts(day, 12),
            }
        )

    pay_no = 0
    for i in range(n_invoices):
        cust = rows["customers"][i % 12]
        issue = start + dt.timedelta(days=rng.randrange(0, 180))
        due = issue + dt.timedelta(days=int(cust["payment_terms_days"]))
        net = 0
        vat = 0
        for line_no in range(1, 1 + rng.randrange(1, 4)):
            product = rows["products"][rng.randrange(8)]
            qty = Decimal(rng.randrange(1, 20))
            amount = int(qty * product["unit_price_vnd"])
            rows["ar_invoice_lines"].append(
                {
                    "invoice_id": f"INV{i:05d}",
                    "line_no": line_no,
                    "product_id": product["product_id"],
                    "quantity": qty,
                    "unit_price_vnd": product["unit_price_vnd"],
                    "discount_vnd": Decimal(0),
                    "line_amount_vnd": Decimal(amount),
                }
            )
            net += amount
            vat += round(amount * float(product["vat_rate"]))
        total = net + vat
        cancelled = i % 29 == 0
        paid = 0
        if not cancelled:
            for share in [1.0] if i % 3 == 0 else [0.5, 0.5] if i % 3 == 1 else [0.4]:
                pay_day = issue + dt.timedelta(days=rng.randrange(1, 70))
                if pay_day > end_date:
                    continue
                amount = total - paid if share == 1.0 or paid else int(total * share)
                amount = min(amount, total - paid)
                pay_no += 1
                method = ["bank_transfer", "cash", "card", "e_wallet"][pay_no % 4]
                account = None if method == "cash" else "B0"
                pid = f"PAY{pay_no:05d}"
                rows["ar_payments"].append(
                    {
                        "payment_id": pid,
                        "invoice_id": f"INV{i:05d}",
                        "customer_id": cust["customer_id"],
                        "payment_date": pay_day,
                        "amount_vnd": Decimal(amount),
                        "method": method,
                        "bank_account_id": account,
                        "updated_at": _ts(pay_day, 12),
                    }
                )
                if account:
                    bank(pay_day, amount, "sales_receipt", pid)
                paid += amount
        status = (
            "cancelled"
            if cancelled
            else "paid"
            if paid >= total
            else "partially_paid"
            if paid
            else "open"
        )
        invoice = {
            "invoice_id": f"INV{i:05d}",
            "customer_id": cust["customer_id"],
            "issue_date": issue,
            "due_date": due,
            "channel": ["store", "online", "sales_rep"][i % 3],
            "total_amount_vnd": Decimal(total),
            "vat_amount_vnd": Decimal(vat),
            "status": status,
            "updated_at": _ts(issue, 12),
        }
        if i % 10 == 0 and not cancelled:
            # Delivered first as 'open' with an older updated_at, corrected by the second ingest.
            late["ar_invoices"].append(invoice)
            rows["ar_invoices"].append({**invoice, "status": "open", "updated_at": _ts(issue, 4)})
        else:
            rows["ar_invoices"].append(invoice)
    for i in range(40):
        issue = start + dt.timedelta(days=rng.randrange(0, 175))
        total = rng.randrange(5, 80) * 1_000_000
        bill_id = f"BILL{i:04d}"
        paid_day = issue + dt.timedelta(days=rng.randrange(5, 40))
        is_paid = i % 4 != 0 and paid_day <= end_date
        rows["ap_bills"].append(
            {
                "bill_id": bill_id,
                "supplier_id": f"S{i % 5:03d}",
                "issue_date": issue,
                "due_date": issue + dt.timedelta(days=30),
                "total_amount_vnd": Decimal(total),
                "status": "paid" if is_paid else "open",
                "updated_at": _ts(issue, 12),
            }
        )
        if is_paid:
            pid = f"APP{i:04d}"
            rows["ap_payments"].append(
                {
                    "payment_id": pid,
                    "bill_id": bill_id,
                    "supplier_id": f"S{i % 5:03d}",
                    "payment_date": paid_day,
                    "amount_vnd": Decimal(total),
                    "method": "bank_transfer",
                    "bank_account_id": "B1",
                    "updated_at": _ts(paid_day, 12),
                }
            )
            bank(paid_day, -total, "supplier_payment", pid, "B1")
    day = start
    while day <= end_date:
        if day.day == 5:
            bank(day, -30_000_000, "payroll", None)
            bank(day, -12_000_000, "rent", None, "B1")
        day += dt.timedelta(days=1)
    return rows, late


def write_bronze(root: Path, end_date: dt.date, seed: int = 7, n_invoices: int = 160) -> Path:
    """Write the data set under ``root`` as ``<table>/ingest_date=YYYY-MM-DD/part-0.parquet``."""
    first, second = build_rows(end_date, seed, n_invoices)
    for ingest, rows in ((end_date - dt.timedelta(days=1), first), (end_date, second)):
        for table, schema in SCHEMAS.items():
            if not rows[table]:
                continue
            folder = root / table / f"ingest_date={ingest.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                pa.Table.from_pylist(rows[table], schema=schema), folder / "part-0.parquet"
            )
    return root
