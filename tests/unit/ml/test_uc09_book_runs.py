"""UC09 book model: payment runs and the simulated median, on hand-made books."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.uc09_book import (
    BookConfig,
    _simulated_median,
    conformal_quantiles,
    payment_run_days,
    point_forecast,
)
from smepulse.ml.uc09_book_data import NOT_CANCELLED, BookData, day_date, day_number

pytestmark = pytest.mark.unit
CUTOFF = day_number(dt.date(2026, 6, 30))  # a Tuesday
CFG = BookConfig(horizon=30, calibration_cutoffs=3, simulations=0)


def _open_days(first: int, last: int) -> list[int]:
    """Every day but Sundays (the bank shows nothing on Sundays)."""
    return [d for d in range(first, last + 1) if day_date(d).weekday() != 6]


def _run_after(day: int) -> int:
    """The first 10th or 25th on or after ``day``, moved to the Saturday when a Sunday."""
    d = day
    while True:
        date = day_date(d)
        if date.day in (10, 25):
            return d - 1 if date.weekday() == 6 else d
        d += 1


def _runs_book(open_bills: list[tuple[str, int, float]]) -> BookData:
    """Weekly bills of 100, due 14 days after issue, each paid in the first run (10th/25th)
    on or after its due date; plus ``open_bills`` (id, due, total), unpaid. A fee of 1 VND
    leaves the bank every open day, so the bank shows which days were open."""
    bills, payments, bank = [], [], []
    for k, issue in enumerate(range(CUTOFF - 480, CUTOFF - 130, 7)):
        due = issue + 14
        pay = _run_after(due)
        bills.append((f"B{k}", "S1", issue, due, 100.0, NOT_CANCELLED))
        payments.append((f"B{k}", pay, 100.0))
        bank.append((pay, -100.0, "supplier_payment", "", f"B{k}"))
    for bill_id, due, total in open_bills:
        bills.append((bill_id, "S1", due - 14, due, total, NOT_CANCELLED))
    bank += [(d, -1.0, "other", "", "") for d in _open_days(CUTOFF - 500, CUTOFF)]
    doc_cols = ["issue_day", "due_day", "total", "cancelled_day"]
    return BookData(
        invoices=pd.DataFrame(columns=["invoice_id", "customer_id", "segment", *doc_cols]).astype(
            {"issue_day": "int64", "due_day": "int64", "total": float, "cancelled_day": "int64"}
        ),
        ar_payments=pd.DataFrame(columns=["invoice_id", "pay_day", "amount"]).astype(
            {"pay_day": "int64", "amount": float}
        ),
        bills=pd.DataFrame(bills, columns=["bill_id", "supplier_id", *doc_cols]),
        ap_payments=pd.DataFrame(payments, columns=["bill_id", "pay_day", "amount"]),
        bank=pd.DataFrame(
            bank, columns=["cash_day", "amount", "category", "invoice_id", "bill_id"]
        ),
        names={"S1": "Supplier One"},
    )


def test_payment_runs_are_found_on_the_10th_and_25th_and_moved_off_sundays() -> None:
    book = _runs_book([])
    paid = book.bank[book.bank["bill_id"] != ""].assign(amount=100.0)
    runs = payment_run_days(paid, CUTOFF, CUTOFF - 480, 30, 0.7)
    assert runs is not None
    dates = {day_date(int(r)) for r in runs}
    # 25 May 2025 was a Sunday: that run was made on Saturday the 24th
    assert dt.date(2025, 5, 24) in dates and dt.date(2025, 5, 25) not in dates
    assert {dt.date(2026, 6, 10), dt.date(2026, 6, 25)} <= dates
    # the future: 10 July 2026 is a Friday, 25 July a Saturday (open), 10 August a Monday
    assert {dt.date(2026, 7, 10), dt.date(2026, 7, 25)} <= dates
    assert not any(day_date(int(r)).day not in (9, 10, 24, 25) for r in runs)
    # further ahead: 25 October 2026 is a Sunday, a day it never pays on -> Saturday the 24th
    ahead = payment_run_days(paid, CUTOFF, CUTOFF - 480, 120, 0.7)
    assert ahead is not None
    later = {day_date(int(r)) for r in ahead}
    assert dt.date(2026, 10, 24) in later and dt.date(2026, 10, 25) not in later


def test_a_business_paying_every_day_has_no_runs() -> None:
    days = np.array(_open_days(CUTOFF - 364, CUTOFF))
    paid = pd.DataFrame({"cash_day": days, "amount": 100.0})
    assert payment_run_days(paid, CUTOFF, CUTOFF - 400, 30, 0.7) is None


def test_an_open_bill_is_expected_whole_on_the_first_run_after_its_due_date() -> None:
    # due Sunday 5 July -> the run of Friday 10 July (h = 10); due Sunday 12 July -> the run
    # of Saturday 25 July (h = 25). History: every bill paid whole in that run.
    book = _runs_book([("open1", CUTOFF + 5, 500.0), ("open2", CUTOFF + 12, 200.0)])
    fc = point_forecast(book, CUTOFF, CFG)
    payments = fc.components["payments_book"]
    expected = np.zeros(30)
    expected[10 - 1], expected[25 - 1] = -500.0, -200.0
    np.testing.assert_allclose(payments.to_numpy(), expected, atol=1e-6)


def test_simulated_median_of_a_lumpy_document_is_not_its_mean() -> None:
    # one document of 100: 60 % on day 1, 30 % on day 2, 10 % later. Day 1 gets 100 in most
    # draws (median 100, mean 60); day 2 gets 0 in most draws (median 0, mean 30).
    median, mean = _simulated_median(np.array([[0.6, 0.3]]), np.array([100.0]), 2000, seed=1)
    np.testing.assert_allclose(median, [100.0, 0.0])
    np.testing.assert_allclose(mean, [60.0, 30.0], atol=3.0)
    # two documents of 50 and 30 sure to pay on day 1 and day 2: no randomness left
    median, mean = _simulated_median(
        np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([50.0, -30.0]), 10, seed=1
    )
    np.testing.assert_allclose(median, [50.0, -30.0])
    np.testing.assert_allclose(mean, [50.0, -30.0])


def test_symmetric_conformal_width_is_the_corrected_rank_of_the_absolute_errors() -> None:
    # nine errors at one horizon, |e| = 1..9; level 0.8: rank ceil(10 * 0.8) = 8 -> ± 8
    errors = np.array([[1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 9.0]]).T
    low, high = conformal_quantiles(errors, 0.8, pool=0, symmetric=True)
    assert (low[0], high[0]) == (-8.0, 8.0)
    # three errors are too few for an 80 % guarantee (rank 4 > 3): an infinite interval
    low, high = conformal_quantiles(errors[:3], 0.8, pool=0, symmetric=True)
    assert high[0] == np.inf and low[0] == -np.inf
