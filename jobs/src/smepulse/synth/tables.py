"""Assemble the generated entities into the contract's Arrow tables, one per ingest date.

Each table is first built with *every version* of every row (a customer before and after a
credit review, an invoice when issued, after each payment, when cancelled). An incremental
export on ingest date D holds each key that changed since the previous export, in its state
at D; so a key repeats across ingest dates with a newer ``updated_at`` and is unique within
one ingest date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from smepulse.bronze.contract import (
    CHANNELS,
    DOCUMENT_STATUSES,
    MONEY,
    PAYMENT_METHODS,
    QUANTITY,
    TXN_CATEGORIES,
    VAT_RATE,
    stamped_schema,
)
from smepulse.synth.ap import Purchases
from smepulse.synth.bank import BANK_ACCOUNTS, REF_AP, REF_AR
from smepulse.synth.docs import document_versions, ingest_index, newest_per_ingest
from smepulse.synth.master import SEGMENTS, Master
from smepulse.synth.sales import Sales
from smepulse.synth.util import (
    I64,
    dates,
    decimals,
    entity_ids,
    local_day,
    local_us,
    timestamps,
)

Split = list[pa.Table]


def _enum(values: tuple[str, ...], codes: I64) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def _nullable_id(kind: str, index: I64) -> pa.Array:
    """Ids where ``index >= 0``, null where it is -1 (e.g. the bank account of a cash payment)."""
    ids = entity_ids(kind, np.maximum(index, 0))
    return pc.if_else(pa.array(index < 0), pa.scalar(None, pa.string()), ids)


def split(table: str, columns: dict[str, pa.Array], key: I64, ts: I64, ingest_days: I64) -> Split:
    """Distribute row versions over the ingest dates (see the module docstring)."""
    data = pa.Table.from_arrays(list(columns.values()), schema=stamped_schema(table))
    order = np.lexsort((ts, key))
    ingest = ingest_index(local_day(ts[order]), ingest_days)
    keep = newest_per_ingest(key[order], ingest)
    return [data.take(pa.array(order[keep & (ingest == i)])) for i in range(len(ingest_days))]


def customers(m: Master, days: I64) -> Split:
    c, rev = m.customers, m.customer_reviews
    idx = np.concatenate([np.arange(len(c)), rev["customer"].to_numpy()])
    updated = np.concatenate([c["created_us"].to_numpy(), rev["review_us"].to_numpy()])
    credit = np.concatenate([c["credit"].to_numpy(), rev["credit"].to_numpy()])
    t = pa.array(idx)
    cols = {
        "customer_id": entity_ids("customer", idx),
        "customer_name": pa.array(c["name"], pa.string()).take(t),
        "tax_code": pa.array(c["tax_code"], pa.string()).take(t),
        "province_code": pa.array(c["province"], pa.string()).take(t),
        "segment": _enum(SEGMENTS, c["segment"].to_numpy()[idx]),
        "credit_limit_vnd": decimals(credit, MONEY),
        "payment_terms_days": pa.array(c["terms"].to_numpy()[idx].astype(np.int32)),
        "created_at": timestamps(c["created_us"].to_numpy()[idx]),
        "updated_at": timestamps(updated),
    }
    return split("customers", cols, idx, updated, days)


def suppliers(m: Master, days: I64) -> Split:
    s = m.suppliers
    idx = np.arange(len(s))
    cols = {
        "supplier_id": entity_ids("supplier", idx),
        "supplier_name": pa.array(s["name"], pa.string()),
        "tax_code": pa.array(s["tax_code"], pa.string()),
        "province_code": pa.array(s["province"], pa.string()),
        "payment_terms_days": pa.array(s["terms"].to_numpy().astype(np.int32)),
        "created_at": timestamps(s["created_us"].to_numpy()),
        "updated_at": timestamps(s["updated_us"].to_numpy()),
    }
    return split("suppliers", cols, idx, s["updated_us"].to_numpy(), days)


def products(m: Master, days: I64) -> Split:
    p = m.products
    idx = np.arange(len(p))
    cols = {
        "product_id": entity_ids("product", idx),
        "sku": pa.array(p["sku"], pa.string()),
        "product_name": pa.array(p["name"], pa.string()),
        "category": pa.array(p["category"], pa.string()),
        "unit_price_vnd": decimals(p["price"].to_numpy(), MONEY),
        "unit_cost_vnd": decimals(p["cost"].to_numpy(), MONEY),
        "vat_rate": decimals(p["vat_bp"].to_numpy(), VAT_RATE),  # basis points = 4 decimals
        "is_active": pa.array(p["is_active"].to_numpy()),
        "updated_at": timestamps(p["updated_us"].to_numpy()),
    }
    return split("products", cols, idx, p["updated_us"].to_numpy(), days)


def bank_accounts(m: Master, days: I64) -> Split:
    idx = np.arange(len(BANK_ACCOUNTS))
    updated = local_us(np.full(len(idx), m.start_day - 500), np.full(len(idx), 9 * 3600))
    cols = {
        "bank_account_id": entity_ids("bank_account", idx),
        "bank_name": pa.array([b for b, _ in BANK_ACCOUNTS]),
        "account_no_masked": pa.array([a for _, a in BANK_ACCOUNTS]),
        "currency": pa.array(["VND"] * len(idx)),
        "updated_at": timestamps(updated),
    }
    return split("bank_accounts", cols, idx, updated, days)


def _doc_versions(docs: pd.DataFrame, pay: pd.DataFrame, doc_col: str) -> pd.DataFrame:
    versions: pd.DataFrame = document_versions(
        docs["created_us"].to_numpy(),
        docs["total"].to_numpy(),
        docs["cancelled_us"].to_numpy(),
        pay[doc_col].to_numpy(),
        pay["us"].to_numpy(),
        pay["amount"].to_numpy(),
    )
    return versions


def ar_tables(s: Sales, days: I64) -> dict[str, Split]:
    inv, lines, pay = s.invoices, s.lines, s.payments
    v = _doc_versions(inv, pay, "invoice")
    doc = v["doc"].to_numpy()
    invoices = {
        "invoice_id": entity_ids("invoice", doc),
        "customer_id": entity_ids("customer", inv["customer"].to_numpy()[doc]),
        "issue_date": dates(inv["day"].to_numpy()[doc]),
        "due_date": dates(inv["due_day"].to_numpy()[doc]),
        "channel": _enum(CHANNELS, inv["channel"].to_numpy()[doc]),
        "total_amount_vnd": decimals(inv["total"].to_numpy()[doc], MONEY),
        "vat_amount_vnd": decimals(inv["vat"].to_numpy()[doc], MONEY),
        "status": _enum(DOCUMENT_STATUSES, v["status"].to_numpy()),
        "updated_at": timestamps(v["ts"].to_numpy()),
    }
    li = lines["invoice"].to_numpy()
    line_cols = {
        "invoice_id": entity_ids("invoice", li),
        "line_no": pa.array(lines["line_no"].to_numpy().astype(np.int32)),
        "product_id": entity_ids("product", lines["product"].to_numpy()),
        "quantity": decimals(lines["qty_milli"].to_numpy(), QUANTITY),
        "unit_price_vnd": decimals(lines["price"].to_numpy(), MONEY),
        "discount_vnd": decimals(lines["discount"].to_numpy(), MONEY),
        "line_amount_vnd": decimals(lines["amount"].to_numpy(), MONEY),
    }
    pidx = np.arange(len(pay))
    pay_cols = {
        "payment_id": entity_ids("ar_payment", pidx),
        "invoice_id": entity_ids("invoice", pay["invoice"].to_numpy()),
        "customer_id": entity_ids("customer", pay["customer"].to_numpy()),
        "payment_date": dates(pay["day"].to_numpy()),
        "amount_vnd": decimals(pay["amount"].to_numpy(), MONEY),
        "method": _enum(PAYMENT_METHODS, pay["method"].to_numpy()),
        "bank_account_id": _nullable_id("bank_account", pay["account"].to_numpy()),
        "updated_at": timestamps(pay["us"].to_numpy()),
    }
    return {
        "ar_invoices": split("ar_invoices", invoices, doc, v["ts"].to_numpy(), days),
        "ar_invoice_lines": split(
            "ar_invoice_lines",
            line_cols,
            np.arange(len(li)),
            inv["created_us"].to_numpy()[li],
            days,
        ),
        "ar_payments": split("ar_payments", pay_cols, pidx, pay["us"].to_numpy(), days),
    }


def ap_tables(p: Purchases, days: I64) -> dict[str, Split]:
    bills, pay = p.bills, p.payments
    v = _doc_versions(bills, pay, "bill")
    doc = v["doc"].to_numpy()
    bill_cols = {
        "bill_id": entity_ids("bill", doc),
        "supplier_id": entity_ids("supplier", bills["supplier"].to_numpy()[doc]),
        "issue_date": dates(bills["day"].to_numpy()[doc]),
        "due_date": dates(bills["due_day"].to_numpy()[doc]),
        "total_amount_vnd": decimals(bills["total"].to_numpy()[doc], MONEY),
        "status": _enum(DOCUMENT_STATUSES, v["status"].to_numpy()),
        "updated_at": timestamps(v["ts"].to_numpy()),
    }
    pidx = np.arange(len(pay))
    pay_cols = {
        "payment_id": entity_ids("ap_payment", pidx),
        "bill_id": entity_ids("bill", pay["bill"].to_numpy()),
        "supplier_id": entity_ids("supplier", pay["supplier"].to_numpy()),
        "payment_date": dates(pay["day"].to_numpy()),
        "amount_vnd": decimals(pay["amount"].to_numpy(), MONEY),
        "method": _enum(PAYMENT_METHODS, pay["method"].to_numpy()),
        "bank_account_id": _nullable_id("bank_account", pay["account"].to_numpy()),
        "updated_at": timestamps(pay["us"].to_numpy()),
    }
    return {
        "ap_bills": split("ap_bills", bill_cols, doc, v["ts"].to_numpy(), days),
        "ap_payments": split("ap_payments", pay_cols, pidx, pay["us"].to_numpy(), days),
    }


def bank_transactions(
    rows: pd.DataFrame, descriptions: pa.Array, names: list[str], days: I64
) -> Split:
    idx = np.arange(len(rows))
    kind = rows["ref_kind"].to_numpy()
    ref_no = np.maximum(rows["ref_no"].to_numpy(), 0)
    reference = pc.if_else(
        pa.array(kind == REF_AR),
        entity_ids("ar_payment", ref_no),
        pc.if_else(
            pa.array(kind == REF_AP), entity_ids("ap_payment", ref_no), pa.scalar(None, pa.string())
        ),
    )
    us = rows["us"].to_numpy()
    cols = {
        "txn_id": entity_ids("txn", idx),
        "bank_account_id": entity_ids("bank_account", rows["account"].to_numpy()),
        "txn_at": timestamps(us),
        "amount_vnd": decimals(rows["amount"].to_numpy(), MONEY),
        "counterparty": pa.array(names, pa.string()).take(pa.array(rows["cp"].to_numpy())),
        "description": descriptions.take(pa.array(rows["desc_row"].to_numpy())),
        "category": _enum(TXN_CATEGORIES, rows["category"].to_numpy()),
        "reference_id": reference,
        "updated_at": timestamps(us),
    }
    return split("bank_transactions", cols, idx, us, days)


def labels_table(labels: pd.DataFrame) -> pa.Table:
    """Ground truth for anomaly detection: txn_id, anomaly_type, txn_date (local date)."""
    return pa.table(
        {
            "txn_id": entity_ids("txn", labels["row"].to_numpy()),
            "anomaly_type": pa.array(labels["anomaly_type"], pa.string()),
            "txn_date": dates(labels["day"].to_numpy()),
        }
    )
