"""The book-based UC09 model on hand-made books whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from smepulse.ml.uc09_book import BookConfig, BookModel, conformal_quantiles, point_forecast
from smepulse.ml.uc09_book_data import NOT_CANCELLED, BookData, day_number

pytestmark = pytest.mark.unit
CUTOFF = day_number(dt.date(2026, 6, 30))  # a Tuesday
CFG = BookConfig(horizon=30, calibration_cutoffs=3)


def _book(
    invoices: list[tuple[str, int, int, float, int]],
    ar_payments: list[tuple[str, int, float]],
    bank: list[tuple[int, float, str, str, str]],
) -> BookData:
    """invoices: (id, issue, due, total, cancelled_day); payments: (invoice, day, amount);
    bank: (day, amount, category, invoice_id, bill_id)."""
    return BookData(
        invoices=pd.DataFrame(
            [(i, "C1", "retail", iss, due, tot, canc) for i, iss, due, tot, canc in invoices],
            columns=[
                "invoice_id",
                "customer_id",
                "segment",
                "issue_day",
                "due_day",
                "total",
                "cancelled_day",
            ],
        ),
        ar_payments=pd.DataFrame(ar_payments, columns=["invoice_id", "pay_day", "amount"]),
        bills=pd.DataFrame(
            columns=["bill_id", "supplier_id", "issue_day", "due_day", "total", "cancelled_day"]
        ).astype(
            {"issue_day": "int64", "due_day": "int64", "total": float, "cancelled_day": "int64"}
        ),
        ap_payments=pd.DataFrame(columns=["bill_id", "pay_day", "amount"]).astype(
            {"pay_day": "int64", "amount": float}
        ),
        bank=pd.DataFrame(
            bank, columns=["cash_day", "amount", "category", "invoice_id", "bill_id"]
        ),
        names={"C1": "Customer One"},
    )


def _history_paid_two_days_late(n: int = 20) -> tuple[list, list, list]:
    """n old invoices of 100, each due 10 days after issue and banked exactly 2 days late."""
    invoices, payments, bank = [], [], []
    for k in range(n):
        due = CUTOFF - 200 - 7 * k
        invoices.append((f"old{k}", due - 10, due, 100.0, NOT_CANCELLED))
        payments.append((f"old{k}", due + 2, 100.0))
        bank.append((due + 2, 100.0, "sales_receipt", f"old{k}", ""))
    return invoices, payments, bank


def test_an_open_invoice_is_expected_on_its_customers_usual_delay() -> None:
    invoices, payments, bank = _history_paid_two_days_late()
    # due 3 days after the cut-off, 40 of 100 already paid (by cash: not in the bank)
    invoices.append(("open", CUTOFF - 5, CUTOFF + 3, 100.0, NOT_CANCELLED))
    payments.append(("open", CUTOFF - 1, 40.0))
    fc = point_forecast(_book(invoices, payments, bank), CUTOFF, CFG)
    expected = np.zeros(30)
    expected[4] = 60.0  # h = 5: due + 2 days, what is still owed
    assert fc.components["collections_book"].to_numpy() == pytest.approx(expected)
    row = fc.details[(fc.details["h"] == 5)].iloc[0]
    assert (row["party_name"], row["n_docs"], row["amount"]) == (
        "Customer One",
        1,
        pytest.approx(60.0),
    )


def test_the_book_is_rebuilt_as_of_the_cutoff() -> None:
    invoices, payments, bank = _history_paid_two_days_late()
    invoices.append(("open", CUTOFF - 5, CUTOFF + 3, 100.0, CUTOFF + 1))  # cancelled the day after
    payments.append(("open", CUTOFF + 5, 100.0))  # and, in another version, paid later
    bank.append((CUTOFF + 5, 100.0, "sales_receipt", "open", ""))
    book = _book(invoices, payments, bank)
    at_cutoff = point_forecast(book, CUTOFF, CFG)
    # neither the cancellation nor the payment was known at the cut-off
    assert at_cutoff.components["collections_book"].iloc[4] == pytest.approx(100.0)
    # leak-free: the forecast is the same whether or not later rows exist
    same = point_forecast(book.as_of(CUTOFF), CUTOFF, CFG)
    pd.testing.assert_frame_equal(at_cutoff.components, same.components)
    # a day later the cancellation is known: nothing is expected any more
    later = point_forecast(book, CUTOFF + 1, CFG)
    assert later.components["collections_book"].sum() == pytest.approx(0.0)


def test_an_invoice_paid_late_by_half_the_history_is_conditioned_on_not_paid_yet() -> None:
    # half the history paid on the due date, half 10 days late
    invoices, payments, bank = [], [], []
    for k in range(20):
        due = CUTOFF - 200 - 7 * k
        delay = 0 if k % 2 else 10
        invoices.append((f"old{k}", due - 10, due, 100.0, NOT_CANCELLED))
        payments.append((f"old{k}", due + delay, 100.0))
        bank.append((due + delay, 100.0, "sales_receipt", f"old{k}", ""))
    # due 2 days ago and not paid: the on-time half is ruled out, so all of it is expected at +10
    invoices.append(("late", CUTOFF - 20, CUTOFF - 2, 100.0, NOT_CANCELLED))
    fc = point_forecast(_book(invoices, payments, bank), CUTOFF, CFG)
    expected = np.zeros(30)
    expected[7] = 100.0  # due - 2 + 10 = cut-off + 8
    assert fc.components["collections_book"].to_numpy() == pytest.approx(expected)


def test_monthly_rent_lands_on_its_day_and_a_closed_sunday_moves_to_monday() -> None:
    bank = []
    for months_back in range(1, 13):
        first = pd.Timestamp(2026, 6, 1) - pd.DateOffset(months=months_back - 1)
        for dom, amount, category in ((1, -10.0, "rent"), (5, -50.0, "payroll")):
            day = pd.Timestamp(first.year, first.month, dom)
            if day.weekday() == 6:
                day += pd.Timedelta(days=1)  # the business never pays on Sunday
            bank.append((day_number(day.date()), amount, category, "", ""))
    fc = point_forecast(_book([], [], bank), CUTOFF, CFG)
    rent = fc.components["recurring_rent"]
    payroll = fc.components["recurring_payroll"]
    # 1 July 2026 is a Wednesday (h = 1); 5 July 2026 is a Sunday -> Monday 6 July (h = 6)
    assert rent[rent != 0].to_dict() == {1: pytest.approx(-10.0)}
    assert payroll[payroll != 0].to_dict() == {6: pytest.approx(-50.0)}


def test_conformal_quantiles_cover_fresh_exchangeable_errors() -> None:
    rng = np.random.default_rng(7)
    errors = rng.standard_t(df=3, size=(20, 30)) * 100
    low, high = conformal_quantiles(errors, 0.8, pool=3)
    fresh = rng.standard_t(df=3, size=(20_000, 30)) * 100
    inside = (fresh >= low) & (fresh <= high)
    assert 0.78 <= inside.mean() <= 0.88  # at least the level, not much more
    assert np.all(low < 0) and np.all(high > 0)


def test_conformal_quantiles_of_a_known_sample() -> None:
    errors = np.arange(1.0, 100.0)[:, None]  # 99 errors 1..99, one horizon, no pooling
    low, high = conformal_quantiles(errors, 0.8, pool=0)
    # finite-sample levels floor(100 * 0.1) / 99 and ceil(100 * 0.9) / 99 of 1..99
    assert low[0] == pytest.approx(np.quantile(np.arange(1.0, 100.0), 10 / 99))
    assert high[0] == pytest.approx(np.quantile(np.arange(1.0, 100.0), 90 / 99))
    assert 10.5 <= low[0] <= 11 and 90 <= high[0] <= 90.5


def test_model_round_trip_keeps_intervals_and_the_forecast(tmp_path) -> None:  # type: ignore[no-untyped-def]
    invoices, payments, bank = _history_paid_two_days_late(40)
    for k in range(300):  # a steady other inflow so calibration has errors to learn from
        bank.append((CUTOFF - k, 10.0 + (k % 7), "other", "", ""))
    book = _book(invoices, payments, bank)
    model = BookModel(CFG).fit(book, CUTOFF)
    model.save(tmp_path / "m")
    again = BookModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(model.predict(30), again.predict(30))
    out = model.predict(30)
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    explained = model.explain()
    assert set(explained["component"]) >= {"collections_book", "other_in", "recurring_rent"}
    per_day = explained.groupby("forecast_date")["amount_vnd"].sum().to_numpy()
    assert per_day == pytest.approx(out["yhat"].to_numpy())


def test_payment_runs_without_a_document_due_in_the_learning_window_stay_finite() -> None:
    """A small business (72 bills a year) had folds where no bill fell due in the learning
    window: the per-gap weight was 0/0, NaN chances broke the simulation (IndexError on the
    real node). With no evidence the pooled rate stands and every chance is a number."""
    from smepulse.ml.uc09_book import _run_book

    bills = pd.DataFrame(
        [("open", "S1", CUTOFF - 10, CUTOFF + 5, 100.0, NOT_CANCELLED)],
        columns=["bill_id", "supplier_id", "issue_day", "due_day", "total", "cancelled_day"],
    )
    payments = pd.DataFrame(columns=["bill_id", "pay_day", "amount"]).astype(
        {"pay_day": "int64", "amount": float}
    )
    links = pd.DataFrame(columns=["bill_id", "cash_day", "amount"]).astype(
        {"cash_day": "int64", "amount": float}
    )
    runs = np.arange(CUTOFF - 400, CUTOFF + 60, 7, dtype=np.int64)
    amounts, _details, chances, owed = _run_book(
        bills, "bill_id", "supplier_id", payments, links, runs, CUTOFF, CFG
    )
    assert np.isfinite(chances).all() and np.isfinite(amounts).all()
    assert owed.tolist() == [100.0]
