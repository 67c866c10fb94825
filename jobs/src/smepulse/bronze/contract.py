"""The bronze contract: the one source of truth for the product's input.

Bronze is what a customer's own ingestion (an accounting export, a bank feed) drops into
object storage: ``<bronze root>/<table>/ingest_date=YYYY-MM-DD/*.parquet``. This module states
that contract as data: per table the exact Arrow schema, the key, which columns may be null,
the foreign keys, the accepted values of enum columns and the value rules. The synthetic
generator writes exactly these schemas, ``validate-bronze`` checks files against them, and
``docs/bronze-contract.md`` is rendered from them (a unit test keeps the three in step).

Change rules: adding a nullable column is a minor version bump; anything else (a type, a
rename, a removed column, a stricter rule) is a major bump and must be announced to users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pyarrow as pa
from vietnam_provinces import Province

CONTRACT_VERSION = "1.1"  # 1.1: the optional alert_feedback table (UC10 verdicts)

#: Schema metadata key the generator stamps on every file it writes (informational only).
VERSION_METADATA_KEY = b"smepulse.bronze_contract_version"

ID = pa.string()
MONEY = pa.decimal128(18, 0)  # VND has no minor unit
QUANTITY = pa.decimal128(18, 3)
VAT_RATE = pa.decimal128(5, 4)  # 0.0800 = 8 %
INT32 = pa.int32()
DAYS = INT32  # *_days columns
DATE = pa.date32()
TIMESTAMP = pa.timestamp("us", tz="UTC")

SEGMENTS = ("retail", "wholesale", "enterprise")
CHANNELS = ("store", "online", "sales_rep")
DOCUMENT_STATUSES = ("open", "paid", "partially_paid", "cancelled")
PAYMENT_METHODS = ("bank_transfer", "cash", "card", "e_wallet")
TXN_CATEGORIES = (
    "sales_receipt",
    "supplier_payment",
    "payroll",
    "rent",
    "tax",
    "utilities",
    "other",
)
CURRENCIES = ("VND",)
VERDICTS = ("confirmed", "false_positive")
#: The vietnam-provinces package's numeric province codes, as text ("1" Hà Nội, "79" HCMC).
PROVINCE_CODES = tuple(str(int(p.code)) for p in Province.iter_all())


@dataclass(frozen=True)
class Column:
    """One column: name, exact Arrow type, whether null is allowed, what it means."""

    name: str
    type: pa.DataType
    description: str
    nullable: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """``column`` must hold a key of ``parent`` (null allowed only if the column is nullable)."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class TableContract:
    """The contract of one bronze table.

    ``key`` is unique and never null within one ingest date; across ingest dates the same key
    may repeat and the row with the newest ``updated_at`` wins (tables without ``updated_at``
    hold immutable rows). ``ordered`` lists ``(earlier, later)`` column pairs with
    ``earlier <= later`` on every row where both are set. ``may_be_future`` names date
    columns exempt from the "not after the logical date" rule (a due date may lie ahead).
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    non_negative: tuple[str, ...] = ()
    ordered: tuple[tuple[str, str], ...] = ()
    may_be_future: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: An optional table may be absent (no file yet); when present it is validated in full.
    optional: bool = False

    @property
    def schema(self) -> pa.Schema:
        """The exact Arrow schema of the table (column order is part of the contract)."""
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that must never be null."""
        return tuple(c.name for c in self.columns if not c.nullable)

    @property
    def date_columns(self) -> tuple[str, ...]:
        """``*_date`` and ``*_at`` columns that may not lie after the run's logical date."""
        return tuple(
            c.name
            for c in self.columns
            if c.type in (DATE, TIMESTAMP) and c.name not in self.may_be_future
        )


def _c(name: str, type_: pa.DataType, description: str, nullable: bool = False) -> Column:
    return Column(name, type_, description, nullable)


_UPDATED = _c("updated_at", TIMESTAMP, "When the source system last changed the row (UTC).")
_PROVINCE = _c("province_code", ID, "vietnam-provinces numeric province code as text.")

TABLES: Mapping[str, TableContract] = MappingProxyType(
    {
        t.name: t
        for t in (
            TableContract(
                "customers",
                "Customers of the SME (one row per customer).",
                (
                    _c("customer_id", ID, "Customer key."),
                    _c("customer_name", ID, "Registered name (Vietnamese, UTF-8)."),
                    _c("tax_code", ID, "10-digit tax code; null for walk-in customers.", True),
                    _PROVINCE,
                    _c("segment", ID, "Customer segment."),
                    _c("credit_limit_vnd", MONEY, "Credit limit granted (VND)."),
                    _c("payment_terms_days", DAYS, "Days from issue to due date."),
                    _c("created_at", TIMESTAMP, "When the customer was created (UTC)."),
                    _UPDATED,
                ),
                key=("customer_id",),
                enums={"segment": SEGMENTS, "province_code": PROVINCE_CODES},
                non_negative=("credit_limit_vnd", "payment_terms_days"),
                ordered=(("created_at", "updated_at"),),
            ),
            TableContract(
                "suppliers",
                "Suppliers the SME buys from.",
                (
                    _c("supplier_id", ID, "Supplier key."),
                    _c("supplier_name", ID, "Registered name."),
                    _c("tax_code", ID, "10-digit tax code."),
                    _PROVINCE,
                    _c("payment_terms_days", DAYS, "Days from bill to due date."),
                    _c("created_at", TIMESTAMP, "When the supplier was created (UTC)."),
                    _UPDATED,
                ),
                key=("supplier_id",),
                enums={"province_code": PROVINCE_CODES},
                non_negative=("payment_terms_days",),
                ordered=(("created_at", "updated_at"),),
            ),
            TableContract(
                "products",
                "The product catalogue.",
                (
                    _c("product_id", ID, "Product key."),
                    _c("sku", ID, "Stock-keeping unit code."),
                    _c("product_name", ID, "Product name."),
                    _c("category", ID, "Product category (free text)."),
                    _c("unit_price_vnd", MONEY, "List price per unit, before VAT."),
                    _c("unit_cost_vnd", MONEY, "Purchase cost per unit, before VAT."),
                    _c("vat_rate", VAT_RATE, "VAT rate (0.0800 = 8 %, 0.1000 = 10 %)."),
                    _c("is_active", pa.bool_(), "False once the product is discontinued."),
                    _UPDATED,
                ),
                key=("product_id",),
                non_negative=("unit_price_vnd", "unit_cost_vnd", "vat_rate"),
            ),
            TableContract(
                "ar_invoices",
                "Sales invoices (accounts receivable).",
                (
                    _c("invoice_id", ID, "Invoice key."),
                    _c("customer_id", ID, "The invoiced customer."),
                    _c("issue_date", DATE, "Invoice date (business time zone)."),
                    _c("due_date", DATE, "Payment due date."),
                    _c("channel", ID, "Sales channel."),
                    _c("total_amount_vnd", MONEY, "Sum of line amounts + vat_amount_vnd."),
                    _c(
                        "vat_amount_vnd", MONEY, "VAT: sum over lines of round(line amount x rate)."
                    ),
                    _c("status", ID, "Status as of updated_at, consistent with ar_payments."),
                    _UPDATED,
                ),
                key=("invoice_id",),
                foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
                enums={"channel": CHANNELS, "status": DOCUMENT_STATUSES},
                non_negative=("total_amount_vnd", "vat_amount_vnd"),
                ordered=(("issue_date", "due_date"),),
                may_be_future=("due_date",),
                notes=(
                    "total_amount_vnd = sum(ar_invoice_lines.line_amount_vnd) + vat_amount_vnd.",
                    "status: paid when payments sum to the total, partially_paid when some but "
                    "not all is paid, open when nothing is paid, cancelled (never any payment).",
                ),
            ),
            TableContract(
                "ar_invoice_lines",
                "Invoice lines (immutable: written once with their invoice).",
                (
                    _c("invoice_id", ID, "The invoice."),
                    _c("line_no", INT32, "Line number within the invoice, from 1."),
                    _c("product_id", ID, "The product sold."),
                    _c("quantity", QUANTITY, "Quantity in the product's unit."),
                    _c("unit_price_vnd", MONEY, "Price per unit actually charged, before VAT."),
                    _c("discount_vnd", MONEY, "Discount on the line, before VAT."),
                    _c("line_amount_vnd", MONEY, "round(quantity x unit price) - discount."),
                ),
                key=("invoice_id", "line_no"),
                foreign_keys=(
                    ForeignKey("invoice_id", "ar_invoices", "invoice_id"),
                    ForeignKey("product_id", "products", "product_id"),
                ),
                non_negative=("quantity", "unit_price_vnd", "discount_vnd", "line_amount_vnd"),
            ),
            TableContract(
                "ar_payments",
                "Customer payments applied to invoices (immutable).",
                (
                    _c("payment_id", ID, "Payment key."),
                    _c("invoice_id", ID, "The invoice paid."),
                    _c("customer_id", ID, "The paying customer."),
                    _c("payment_date", DATE, "Date received (business time zone)."),
                    _c("amount_vnd", MONEY, "Amount received."),
                    _c("method", ID, "Payment method."),
                    _c("bank_account_id", ID, "Receiving account; null for cash.", True),
                    _UPDATED,
                ),
                key=("payment_id",),
                foreign_keys=(
                    ForeignKey("invoice_id", "ar_invoices", "invoice_id"),
                    ForeignKey("customer_id", "customers", "customer_id"),
                    ForeignKey("bank_account_id", "bank_accounts", "bank_account_id"),
                ),
                enums={"method": PAYMENT_METHODS},
                non_negative=("amount_vnd",),
                notes=(
                    "Payments of an invoice never sum to more than its total_amount_vnd.",
                    "Every non-cash payment appears in bank_transactions with "
                    "reference_id = payment_id.",
                ),
            ),
            TableContract(
                "ap_bills",
                "Supplier bills (accounts payable).",
                (
                    _c("bill_id", ID, "Bill key."),
                    _c("supplier_id", ID, "The supplier."),
                    _c("issue_date", DATE, "Bill date."),
                    _c("due_date", DATE, "Payment due date."),
                    _c("total_amount_vnd", MONEY, "Bill total including VAT."),
                    _c("status", ID, "Status as of updated_at, consistent with ap_payments."),
                    _UPDATED,
                ),
                key=("bill_id",),
                foreign_keys=(ForeignKey("supplier_id", "suppliers", "supplier_id"),),
                enums={"status": DOCUMENT_STATUSES},
                non_negative=("total_amount_vnd",),
                ordered=(("issue_date", "due_date"),),
                may_be_future=("due_date",),
            ),
            TableContract(
                "ap_payments",
                "Payments to suppliers (immutable).",
                (
                    _c("payment_id", ID, "Payment key."),
                    _c("bill_id", ID, "The bill paid."),
                    _c("supplier_id", ID, "The supplier paid."),
                    _c("payment_date", DATE, "Date paid."),
                    _c("amount_vnd", MONEY, "Amount paid."),
                    _c("method", ID, "Payment method."),
                    _c("bank_account_id", ID, "Paying account; null for cash.", True),
                    _UPDATED,
                ),
                key=("payment_id",),
                foreign_keys=(
                    ForeignKey("bill_id", "ap_bills", "bill_id"),
                    ForeignKey("supplier_id", "suppliers", "supplier_id"),
                    ForeignKey("bank_account_id", "bank_accounts", "bank_account_id"),
                ),
                enums={"method": PAYMENT_METHODS},
                non_negative=("amount_vnd",),
            ),
            TableContract(
                "bank_accounts",
                "The SME's bank accounts.",
                (
                    _c("bank_account_id", ID, "Account key."),
                    _c("bank_name", ID, "Bank."),
                    _c("account_no_masked", ID, "Account number with all but 4 digits masked."),
                    _c("currency", ID, "Account currency."),
                    _UPDATED,
                ),
                key=("bank_account_id",),
                enums={"currency": CURRENCIES},
            ),
            TableContract(
                "bank_transactions",
                "The bank feed: every movement on the SME's accounts (immutable).",
                (
                    _c("txn_id", ID, "Transaction key."),
                    _c("bank_account_id", ID, "The account."),
                    _c("txn_at", TIMESTAMP, "Booking time (UTC)."),
                    _c("amount_vnd", MONEY, "Signed: + money in, - money out."),
                    _c("counterparty", ID, "Name of the other party as the bank shows it."),
                    _c("description", ID, "Free-text remittance information."),
                    _c("category", ID, "What the movement is."),
                    _c("reference_id", ID, "ar_payments/ap_payments payment_id, if any.", True),
                    _UPDATED,
                ),
                key=("txn_id",),
                foreign_keys=(ForeignKey("bank_account_id", "bank_accounts", "bank_account_id"),),
                enums={"category": TXN_CATEGORIES},
                notes=(
                    "reference_id points at ar_payments or ap_payments; it is not unique (a bank "
                    "may book the same payment twice) and not checked as a foreign key.",
                ),
            ),
        )
    }
)

#: The business data every ingestion (and the generator) delivers.
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

ALERT_FEEDBACK = TableContract(
    "alert_feedback",
    "Users' verdicts on UC10 anomaly alerts (written by `smepulse alerts review`, or committed "
    "by a GitOps user); UC10's labels and the source of kpi_alert_precision.",
    (
        _c("feedback_id", ID, "Verdict key (one per recorded verdict)."),
        _c("txn_id", ID, "The reviewed bank transaction."),
        _c("verdict", ID, "confirmed (a real problem) or false_positive."),
        _c("note", ID, "Free-text note of the reviewer.", True),
        _c("model_name", ID, "Registered model that raised the alert, if known.", True),
        _c("model_version", ID, "Its version.", True),
        _c("alert_date", DATE, "Logical date of the run that raised the alert, if known.", True),
        _c("reviewed_by", ID, "Who recorded the verdict.", True),
        _UPDATED,
    ),
    key=("feedback_id",),
    foreign_keys=(ForeignKey("txn_id", "bank_transactions", "txn_id"),),
    enums={"verdict": VERDICTS},
    notes=(
        "Append-only: a later verdict on the same txn_id (newest updated_at) replaces an earlier "
        "one; nothing is rewritten.",
        "Optional: absent until the first verdict is recorded.",
    ),
    optional=True,
)

#: Every table of the contract: the business data plus the optional feedback tables.
ALL_TABLES: Mapping[str, TableContract] = MappingProxyType(
    {**TABLES, ALERT_FEEDBACK.name: ALERT_FEEDBACK}
)


def contract(table: str) -> TableContract:
    """The contract of ``table``; KeyError naming the known tables otherwise."""
    try:
        return ALL_TABLES[table]
    except KeyError:
        raise KeyError(f"unknown bronze table {table!r}; known: {', '.join(ALL_TABLES)}") from None


def stamped_schema(table: str) -> pa.Schema:
    """The table's schema with the contract version in its metadata (what the generator writes)."""
    return contract(table).schema.with_metadata({VERSION_METADATA_KEY: CONTRACT_VERSION.encode()})
