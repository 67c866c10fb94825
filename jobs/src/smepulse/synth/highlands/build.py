"""Assemble the highlands trader into the bronze contract's tables (one Arrow table per
ingest date), reusing the generator's plumbing for ids, versions and ingest splitting."""

from __future__ import annotations

from collections.abc import Callable

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
    TABLE_NAMES,
    TXN_CATEGORIES,
    VAT_RATE,
)
from smepulse.synth.docs import document_versions
from smepulse.synth.generate import Dataset, GeneratorConfig
from smepulse.synth.highlands.anomalies import plant
from smepulse.synth.highlands.bank import make_feed
from smepulse.synth.highlands.calendar import day_of
from smepulse.synth.highlands.feed import REF_AP, REF_AR, Calendar
from smepulse.synth.highlands.master import (
    BANK_ACCOUNTS,
    CATEGORIES,
    DEFAULTER,
    FERTILISER,
    FERTILISER_VAT_BP_FROM_2025_07,
    RETAIL,
    VAT_BP,
    Master,
    make_master,
)
from smepulse.synth.highlands.opening import open_purchases, open_sales
from smepulse.synth.highlands.purchases import make_purchases
from smepulse.synth.highlands.sales import VAT_CHANGE_DAY, make_sales
from smepulse.synth.tables import Split, labels_table, split
from smepulse.synth.util import (
    I64,
    US,
    Rng,
    business_seconds,
    dates,
    day_number,
    decimals,
    entity_ids,
    local_us,
    timestamps,
)

#: AR invoices per year of history at scale 1 (two years give about 14,000).
INVOICES_PER_YEAR = 7_000


def _enum(values: tuple[str, ...], codes: I64) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def _nullable_id(kind: str, index: I64) -> pa.Array:
    ids = entity_ids(kind, np.maximum(index, 0))
    return pc.if_else(pa.array(np.asarray(index) < 0), pa.scalar(None, pa.string()), ids)


def _customer_reviews(rng: Rng, m: Master) -> pd.DataFrame:
    """Credit reviews: every March for agents and companies (after the harvest money came
    in), and a credit hold (limit and terms to 0) two months after a customer defaults."""
    c = m.customers
    rows: list[tuple[int, int, int, int]] = []  # customer, us, credit, terms
    cal = Calendar(m)
    years = range(
        int(str(np.datetime64(m.start_day, "D"))[:4]),
        int(str(np.datetime64(m.end_day, "D"))[:4]) + 1,
    )
    columns = ["segment", "credit", "terms", "habit", "default_day", "created_us"]
    for i, (segment, credit, terms, habit, default_day, created_us) in enumerate(
        c[columns].to_numpy().tolist()
    ):
        events: list[tuple[int, int, int]] = []
        if segment != RETAIL:
            for y in years:
                day = cal.after(day_of(y, 3, 1) + int(rng.integers(0, 14)))
                credit = int(round(credit * rng.uniform(0.9, 1.3), -7))
                events.append((day, credit, terms))
        if rng.random() < 0.04:  # an ad-hoc review in the last three weeks
            credit = int(round(credit * rng.uniform(0.8, 1.2), -7))
            events.append((cal.before(m.end_day - int(rng.integers(0, 21))), credit, terms))
        if habit == DEFAULTER and default_day >= 0:
            events.append((cal.after(int(default_day) + 60), 0, 0))
        created_day = int(created_us) // US // 86_400 + 1
        for day, cr, te in sorted(events):
            if created_day < day <= m.end_day:
                us = int(local_us(np.array([day]), business_seconds(rng, 1))[0])
                rows.append((i, us, cr, te))
    return pd.DataFrame(rows, columns=["customer", "us", "credit", "terms"])


def _customers(rng: Rng, m: Master, days: I64) -> Split:
    c, rev = m.customers, _customer_reviews(rng, m)
    idx = np.concatenate([np.arange(len(c)), rev["customer"].to_numpy()]).astype(np.int64)
    updated = np.concatenate([c["created_us"].to_numpy(), rev["us"].to_numpy()]).astype(np.int64)
    credit = np.concatenate([c["credit"].to_numpy(), rev["credit"].to_numpy()])
    terms = np.concatenate([c["terms"].to_numpy(), rev["terms"].to_numpy()])
    t = pa.array(idx)
    cols = {
        "customer_id": entity_ids("customer", idx),
        "customer_name": pa.array(c["name"], pa.string()).take(t),
        "tax_code": pa.array(c["tax_code"], pa.string()).take(t),
        "province_code": pa.array(c["province"], pa.string()).take(t),
        "segment": _enum(("retail", "wholesale", "enterprise"), c["segment"].to_numpy()[idx]),
        "credit_limit_vnd": decimals(credit.astype(np.int64), MONEY),
        "payment_terms_days": pa.array(terms.astype(np.int32)),
        "created_at": timestamps(c["created_us"].to_numpy()[idx]),
        "updated_at": timestamps(updated),
    }
    return split("customers", cols, idx, updated, days)


def _suppliers(m: Master, days: I64) -> Split:
    s = m.suppliers
    idx = np.arange(len(s), dtype=np.int64)
    us = s["created_us"].to_numpy()
    cols = {
        "supplier_id": entity_ids("supplier", idx),
        "supplier_name": pa.array(s["name"], pa.string()),
        "tax_code": pa.array(s["tax_code"], pa.string()),
        "province_code": pa.array(s["province"], pa.string()),
        "payment_terms_days": pa.array(s["terms"].to_numpy().astype(np.int32)),
        "created_at": timestamps(us),
        "updated_at": timestamps(us),
    }
    return split("suppliers", cols, idx, us, days)


def _products(m: Master, days: I64) -> Split:
    """Fertiliser is re-issued with 5 % VAT on 1 July 2025 (it was outside VAT before)."""
    p = m.products
    n = len(p)
    cat = p["category"].to_numpy()
    base_vat = np.array([VAT_BP[int(k)] for k in cat])
    idx = np.arange(n, dtype=np.int64)
    updated = p["updated_us"].to_numpy()
    vat = base_vat.copy()
    if m.start_day <= VAT_CHANGE_DAY <= m.end_day:
        fert = np.flatnonzero(cat == FERTILISER)
        idx = np.concatenate([idx, fert])
        change = local_us(np.full(len(fert), VAT_CHANGE_DAY), np.full(len(fert), 7 * 3600))
        updated = np.concatenate([updated, change])
        vat = np.concatenate([vat, np.full(len(fert), FERTILISER_VAT_BP_FROM_2025_07)])
    elif m.start_day > VAT_CHANGE_DAY:
        vat[cat == FERTILISER] = FERTILISER_VAT_BP_FROM_2025_07
    t = pa.array(idx)
    cols = {
        "product_id": entity_ids("product", idx),
        "sku": pa.array(p["sku"], pa.string()).take(t),
        "product_name": pa.array(p["name"], pa.string()).take(t),
        "category": pa.array(CATEGORIES, pa.string()).take(pa.array(cat[idx])),
        "unit_price_vnd": decimals(p["price"].to_numpy()[idx], MONEY),
        "unit_cost_vnd": decimals(p["cost"].to_numpy()[idx].astype(np.int64), MONEY),
        "vat_rate": decimals(vat.astype(np.int64), VAT_RATE),
        "is_active": pa.array(np.ones(len(idx), dtype=bool)),
        "updated_at": timestamps(updated.astype(np.int64)),
    }
    return split("products", cols, idx, updated.astype(np.int64), days)


def _bank_accounts(m: Master, days: I64) -> Split:
    idx = np.arange(len(BANK_ACCOUNTS), dtype=np.int64)
    updated = local_us(np.full(len(idx), m.start_day - 700), np.full(len(idx), 9 * 3600))
    cols = {
        "bank_account_id": entity_ids("bank_account", idx),
        "bank_name": pa.array([b for b, _ in BANK_ACCOUNTS]),
        "account_no_masked": pa.array([a for _, a in BANK_ACCOUNTS]),
        "currency": pa.array(["VND"] * len(idx)),
        "updated_at": timestamps(updated),
    }
    return split("bank_accounts", cols, idx, updated, days)


def _documents(docs: pd.DataFrame, pay: pd.DataFrame, doc_col: str) -> pd.DataFrame:
    v: pd.DataFrame = document_versions(
        docs["created_us"].to_numpy(),
        docs["total"].to_numpy(),
        docs["cancelled_us"].to_numpy(),
        pay[doc_col].to_numpy(),
        pay["rec_us"].to_numpy(),
        pay["amount"].to_numpy(),
    )
    return v


def _payments(
    pay: pd.DataFrame, kind: str, doc_kind: str, doc_col: str, party: str
) -> dict[str, pa.Array]:
    pidx = np.arange(len(pay), dtype=np.int64)
    return {
        "payment_id": entity_ids(kind, pidx),
        f"{doc_col}_id": entity_ids(doc_kind, pay[doc_col].to_numpy()),
        f"{party}_id": entity_ids(party, pay[party].to_numpy()),
        "payment_date": dates(pay["day"].to_numpy()),
        "amount_vnd": decimals(pay["amount"].to_numpy().astype(np.int64), MONEY),
        "method": _enum(PAYMENT_METHODS, pay["method"].to_numpy()),
        "bank_account_id": _nullable_id("bank_account", pay["account"].to_numpy()),
        "updated_at": timestamps(pay["rec_us"].to_numpy()),
    }


def _ar(
    sales_inv: pd.DataFrame, lines: pd.DataFrame, pay: pd.DataFrame, days: I64
) -> dict[str, Split]:
    v = _documents(sales_inv, pay, "invoice")
    doc = v["doc"].to_numpy()
    inv = sales_inv
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
    pidx = np.arange(len(pay), dtype=np.int64)
    return {
        "ar_invoices": split("ar_invoices", invoices, doc, v["ts"].to_numpy(), days),
        "ar_invoice_lines": split(
            "ar_invoice_lines",
            line_cols,
            np.arange(len(li), dtype=np.int64),
            inv["created_us"].to_numpy()[li],
            days,
        ),
        "ar_payments": split(
            "ar_payments",
            _payments(pay, "ar_payment", "invoice", "invoice", "customer"),
            pidx,
            pay["rec_us"].to_numpy(),
            days,
        ),
    }


def _ap(bills: pd.DataFrame, pay: pd.DataFrame, days: I64) -> dict[str, Split]:
    v = _documents(bills, pay, "bill")
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
    pidx = np.arange(len(pay), dtype=np.int64)
    return {
        "ap_bills": split("ap_bills", bill_cols, doc, v["ts"].to_numpy(), days),
        "ap_payments": split(
            "ap_payments",
            _payments(pay, "ap_payment", "bill", "bill", "supplier"),
            pidx,
            pay["rec_us"].to_numpy(),
            days,
        ),
    }


def _bank(feed: pd.DataFrame, days: I64) -> Split:
    idx = np.arange(len(feed), dtype=np.int64)
    kind = feed["ref_kind"].to_numpy()
    ref_no = np.maximum(feed["ref_no"].to_numpy(), 0)
    reference = pc.if_else(
        pa.array(kind == REF_AR),
        entity_ids("ar_payment", ref_no),
        pc.if_else(
            pa.array(kind == REF_AP), entity_ids("ap_payment", ref_no), pa.scalar(None, pa.string())
        ),
    )
    us = feed["us"].to_numpy().astype(np.int64)
    cols = {
        "txn_id": entity_ids("txn", idx),
        "bank_account_id": entity_ids("bank_account", feed["account"].to_numpy()),
        "txn_at": timestamps(us),
        "amount_vnd": decimals(feed["amount"].to_numpy().astype(np.int64), MONEY),
        "counterparty": pa.array(feed["cp"], pa.string()),
        "description": pa.array(feed["desc"], pa.string()),
        "category": _enum(TXN_CATEGORIES, feed["category"].to_numpy()),
        "reference_id": reference,
        "updated_at": timestamps(us),
    }
    return split("bank_transactions", cols, idx, us, days)


def build_dataset(config: GeneratorConfig, step: Callable[[str], None] | None = None) -> Dataset:
    """The highlands trader in memory (no I/O), same shape as the distributor's data set."""
    report = step or (lambda _: None)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(6)]
    start, end = day_number(config.start_date), day_number(config.end_date)
    ingest = config.ingest_days()
    days = np.array([day_number(d) for d in ingest], dtype=np.int64)
    master = make_master(rngs[0], config.scale, start, end)
    simulated_days = end - master.sim_start_day + 1
    n_invoices = max(60, round(INVOICES_PER_YEAR * config.scale * simulated_days / 365.25))
    report("master data")
    all_sales = make_sales(rngs[1], master, n_invoices)
    sales = open_sales(all_sales, start)
    report("sales")
    all_purchases = make_purchases(rngs[2], master, all_sales)
    purchases = open_purchases(all_purchases, start)
    report("purchases")
    genuine = make_feed(
        rngs[3], master, (sales, purchases), (all_sales, all_purchases), config.scale
    )
    feed, labels = plant(rngs[4], genuine, master)
    report("bank feed")
    tables = {
        "customers": _customers(rngs[5], master, days),
        "suppliers": _suppliers(master, days),
        "products": _products(master, days),
        "bank_accounts": _bank_accounts(master, days),
        **_ar(sales.invoices, sales.lines, sales.payments, days),
        **_ap(purchases.bills, purchases.payments, days),
        "bank_transactions": _bank(feed, days),
    }
    report("tables")
    return Dataset(config, tuple(ingest), {t: tables[t] for t in TABLE_NAMES}, labels_table(labels))
