"""UC09: how well can *any* book-based forecast do on the distributor? An oracle bound (#17).

Usage::

    python benchmarks/bench_ml.py --prepare --business distributor   # once: the bench home
    python benchmarks/bench_uc09_oracle.py                           # same --home/--end-date

The oracle knows far more than a forecast can:

* the **true payment law** of every invoice and bill: the generator's own code is re-run with
  fresh seeds (``smepulse.synth.sales._payments`` for invoices — profile, terms, instalments,
  cash or bank — and the same mixture as ``smepulse.synth.ap.make_purchases`` for bills), each
  draw conditioned on what the book showed at the cut-off (number of payments made by then,
  what is still owed);
* **every future document** issued within the horizon (issue day, amount, customer);
* the **recurring flows** (payroll, rent, tax, utilities) exactly.

Its forecast is the per-day median of the simulated totals (what an absolute-error score
rewards). Its MASE on the bench's outer folds bounds what a model built from the book can
reach; "oracle + other flows" also knows every unlinked bank row in advance — including the
UC10 anomalies planted at random — and shows how much of the remaining error they are.

It also prints where the daily variance comes from (planted anomalies vs the rest, from the
generator's labels) and how predictable payment delays are per customer/supplier.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def conditioned_paths(
    draws: pd.DataFrame,
    paid: pd.DataFrame,
    issue_day: np.ndarray,
    totals: np.ndarray,
    cutoff: int,
    horizon: int,
    n_paths: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_paths x horizon) banked amounts of documents, drawn from their law given the book.

    ``draws``: doc, draw, day, amount, banked — ``draw`` = 0..S-1 independent samples of every
    document's payments from its true law. ``paid``: doc, day, amount — the payments that
    really happened. ``issue_day``/``totals`` are indexed by doc (a cancelled document has
    total 0). A document issued by ``cutoff + horizon`` and not fully paid by ``cutoff`` takes,
    in each path, one draw that made as many payments by ``cutoff`` as it really had (any draw
    when none did); its payments after ``cutoff`` are rescaled so that they settle what the
    document really still owed, in the draw's proportion. Only banked payments count.
    """
    n_draws = int(draws["draw"].max()) + 1
    issued = np.flatnonzero(issue_day <= cutoff + horizon)
    before = paid[paid["day"] <= cutoff].groupby("doc")["amount"].agg(["sum", "count"])
    seen = before.reindex(issued, fill_value=0)
    live_mask = seen["sum"].to_numpy(dtype=float) < totals[issued] - 0.5
    live = issued[live_mask]
    out = np.zeros((n_paths, horizon))
    if len(live) == 0:
        return out
    n_seen = seen["count"].to_numpy()[live_mask]
    owed = totals[live] - seen["sum"].to_numpy(dtype=float)[live_mask]
    mine = draws[draws["doc"].isin(live)]
    grid = pd.MultiIndex.from_product([live, range(n_draws)], names=["doc", "draw"])
    drawn = (
        mine[mine["day"] <= cutoff]
        .groupby(["doc", "draw"])["amount"]
        .agg(["count", "sum"])
        .reindex(grid, fill_value=0)
    )
    consistent = drawn["count"].to_numpy().reshape(len(live), n_draws) == n_seen[:, None]
    consistent[~consistent.any(axis=1)] = True
    drawn_paid = drawn["sum"].to_numpy(dtype=float).reshape(len(live), n_draws)
    order = np.argsort(~consistent, axis=1, kind="stable")  # consistent draws first
    rank = (rng.random((n_paths, len(live))) * consistent.sum(axis=1)[None, :]).astype(np.int64)
    chosen = order[np.arange(len(live))[None, :], rank]
    scale = owed[:, None] / np.maximum(totals[live][:, None] - drawn_paid, 1.0)
    picks = pd.DataFrame(
        {
            "path": np.repeat(np.arange(n_paths), len(live)),
            "pos": np.tile(np.arange(len(live)), n_paths),
            "draw": chosen.ravel(),
            "doc": np.tile(live, n_paths),
        }
    )
    future = mine[(mine["day"] > cutoff) & (mine["day"] <= cutoff + horizon) & mine["banked"]]
    hit = picks.merge(future, on=["doc", "draw"])
    amount = hit["amount"].to_numpy(dtype=float) * scale[hit["pos"], hit["draw"]]
    np.add.at(out, (hit["path"].to_numpy(), hit["day"].to_numpy() - cutoff - 1), amount)
    return out


def _generated(end: dt.date) -> Any:
    """The distributor's master data, invoices and bills as the bench generated them."""
    from smepulse.synth.ap import make_purchases
    from smepulse.synth.generate import INVOICES_PER_YEAR, GeneratorConfig
    from smepulse.synth.master import make_master
    from smepulse.synth.sales import make_sales
    from smepulse.synth.util import day_number

    config = GeneratorConfig(end_date=end)
    start, last = day_number(config.start_date), day_number(end)
    rng_master, rng_sales, rng_ap = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5)[:3]
    )
    n_invoices = max(50, round(INVOICES_PER_YEAR * config.scale * (last - start + 1) / 365.25))
    master = make_master(rng_master, config.scale, start, last)
    sales = make_sales(rng_sales, master, n_invoices)
    purchases = make_purchases(rng_ap, master, sales, max(20, round(n_invoices * 0.12)))
    return master, sales, purchases


def _bill_law_draw(rng: np.random.Generator, bills: pd.DataFrame) -> pd.DataFrame:
    """One draw of every bill's payments, by the law of ``synth.ap.make_purchases``."""
    from smepulse.synth.docs import instalments
    from smepulse.synth.sales import BANK, CASH

    n = len(bills)
    terms = (bills["due_day"] - bills["day"]).to_numpy()
    k = np.where(rng.random(n) < 0.12, 2, 1)
    k[bills["cancelled_us"].to_numpy() >= 0] = 0
    u = rng.random(n)
    delay = np.where(
        u < 0.75,
        np.maximum(terms - rng.integers(0, 6, size=n), 0),
        np.where(
            u < 0.97, terms + rng.integers(1, 21, size=n), terms + rng.integers(20, 61, size=n)
        ),
    )
    inst = instalments(
        rng, bills["total"].to_numpy(), k, np.ones(n), bills["day"] + delay, (10, 30)
    )
    method = np.where(rng.random(len(inst)) < 0.96, BANK, CASH)
    return pd.DataFrame(
        {"doc": inst["doc"], "day": inst["day"], "amount": inst["amount"], "banked": method == BANK}
    )


def _invoice_law_draw(
    rng: np.random.Generator, master: Any, invoices: pd.DataFrame
) -> pd.DataFrame:
    from smepulse.synth.sales import CASH, _payments

    p = _payments(rng, master, invoices)
    return pd.DataFrame(
        {"doc": p["invoice"], "day": p["day"], "amount": p["amount"], "banked": p["method"] != CASH}
    )


def _first_delay(payments: pd.DataFrame, docs: pd.DataFrame) -> pd.Series:
    first = payments.groupby("doc")["day"].min()
    return first - docs["due_day"].reindex(first.index)


def _variance_sources(settings: Any, book: Any, last: int) -> None:
    from smepulse.ml.uc09_book_data import RECURRING_CATEGORIES
    from smepulse.warehouse import get_warehouse

    bank = book.bank
    days = np.arange(last - 364, last + 1)
    kind = np.where(
        bank["invoice_id"] != "",
        "receipts of invoices",
        np.where(
            bank["bill_id"] != "",
            "payments of bills",
            np.where(bank["category"].isin(RECURRING_CATEGORIES), "recurring", "other (unlinked)"),
        ),
    )
    table = (
        bank.assign(kind=kind)
        .pivot_table(index="cash_day", columns="kind", values="amount", aggfunc="sum")
        .reindex(days, fill_value=0.0)
        .fillna(0.0)
    )
    net = table.sum(axis=1)
    print(f"\nDaily net over the last 365 days: sd {net.std() / 1e6:,.0f} M VND. Share of its")
    print("variance (cov(part, net) / var(net); the shares add up to 1):")
    for column in table.columns:
        print(f"  {column:<22}{np.cov(table[column], net)[0, 1] / net.var():6.2f}")
    labels = pd.read_parquet(settings.home / "labels" / "bank_transaction_anomalies.parquet")
    rows = get_warehouse(settings).query(
        "select txn_id, txn_at, cast(amount_vnd as double) as amount "
        f"from {settings.silver_schema}.stg_bronze__bank_transactions order by txn_id"
    )
    rows = rows[rows["txn_id"].isin(labels["txn_id"])]
    local = pd.to_datetime(rows["txn_at"]).dt.tz_localize("UTC").dt.tz_convert(settings.timezone)
    day = local.dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)
    planted = rows["amount"].groupby(day).sum().reindex(days, fill_value=0.0)
    share = np.cov(planted, net)[0, 1] / net.var()
    print(
        f"  of all of it, the planted UC10 anomalies ({len(labels)} labelled rows): {share:.2f}; "
        f"sd of their daily sum {planted.std() / 1e6:,.0f} M vs "
        f"{(net - planted).std() / 1e6:,.0f} M for everything else"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".smepulse-bench"))
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--folds", type=int, default=4, help="outer folds (bench_ml's)")
    parser.add_argument("--draws", type=int, default=200, help="law draws per document")
    parser.add_argument("--paths", type=int, default=400, help="simulated paths per cut-off")
    args = parser.parse_args()

    from smepulse.logs import setup_logging
    from smepulse.ml.backtest import fold_cutoffs, seasonal_scale
    from smepulse.ml.cashflow import CashflowModel, CashflowSpec
    from smepulse.ml.data import load_daily_cashflow
    from smepulse.ml.uc09_book import BookConfig, point_forecast
    from smepulse.ml.uc09_book_data import RECURRING_CATEGORIES, day_date, day_number, load_book
    from smepulse.settings import Settings

    home = Path(f"{args.home.resolve()}-distributor")
    settings = Settings(home=home, logical_date=args.end_date, log_level="WARNING")
    setup_logging(settings)
    daily = load_daily_cashflow(settings, args.end_date)
    book = load_book(settings, args.end_date)
    master, sales, purchases = _generated(args.end_date)
    invoices, bills = sales.invoices, purchases.bills
    for what, ours, theirs in (
        ("invoices", invoices["total"], book.invoices["total"]),
        ("bills", bills["total"], book.bills["total"]),
    ):
        if len(ours) != len(theirs) or float(ours.sum()) != float(theirs.sum()):
            raise SystemExit(
                f"the regenerated {what} ({len(ours)}, {float(ours.sum()):,.0f} VND) are not the "
                f"bench home's ({len(theirs)}, {float(theirs.sum()):,.0f} VND) in {home}: "
                "prepare it with bench_ml.py --prepare (default seed and scale)"
            )
    last = day_number(args.end_date)
    _variance_sources(settings, book, last)

    real_ar = sales.payments.rename(columns={"invoice": "doc"})[["doc", "day", "amount"]]
    real_ap = purchases.payments.rename(columns={"bill": "doc"})[["doc", "day", "amount"]]
    print("\nDelay of the first payment after the due date, days (documents due a year+ ago):")
    for what, pays, docs, party in (
        ("invoices", real_ar, invoices, "customer"),
        ("bills", real_ap, bills, "supplier"),
    ):
        delay = _first_delay(pays, docs).rename("delay").to_frame()
        delay["party"] = docs[party].reindex(delay.index).to_numpy()
        delay = delay[docs["day"].reindex(delay.index).to_numpy() < last - 365]
        by = delay.groupby("party")["delay"]
        big = by.size()[by.size() >= 10].index
        within = by.var()[big]
        pooled = float(delay["delay"].var())
        print(
            f"  {what:<9} pooled sd {np.sqrt(pooled):5.1f}; per {party} (>= 10 documents, "
            f"{len(big)}): median sd {np.sqrt(within.median()):5.1f}; within-{party} share of the "
            f"variance {np.average(within, weights=by.size()[big]) / pooled:.2f}"
        )
    ar_draws = pd.concat(
        [
            _invoice_law_draw(np.random.default_rng(10_000 + s), master, invoices).assign(draw=s)
            for s in range(args.draws)
        ],
        ignore_index=True,
    )
    ap_draws = pd.concat(
        [
            _bill_law_draw(np.random.default_rng(20_000 + s), bills).assign(draw=s)
            for s in range(args.draws)
        ],
        ignore_index=True,
    )
    replica = _first_delay(ap_draws[ap_draws["draw"] == 0], bills)
    real = _first_delay(real_ap, bills)
    print(
        "  bill law as re-drawn: first-payment delay quartiles "
        f"{replica.quantile([0.25, 0.5, 0.75]).tolist()} (the data: "
        f"{real.quantile([0.25, 0.5, 0.75]).tolist()})"
    )
    inv_total = np.where(invoices["cancelled_us"] >= 0, 0, invoices["total"]).astype(float)
    bill_total = np.where(bills["cancelled_us"] >= 0, 0, bills["total"]).astype(float)
    net = daily["net_vnd"].to_numpy(dtype=float)
    horizon = settings.ml_forecast_horizon_days
    rng = np.random.default_rng(7)
    rows = []
    for n in fold_cutoffs(len(daily), horizon, args.folds):
        c = day_number(daily["cash_date"].iloc[n - 1])
        days = np.arange(c + 1, c + horizon + 1)
        scale = seasonal_scale(net[:n])
        actual = net[n : n + horizon]
        window = book.bank[(book.bank["cash_day"] > c) & (book.bank["cash_day"] <= c + horizon)]
        unlinked = (window["invoice_id"] == "") & (window["bill_id"] == "")
        recurring = window[unlinked & window["category"].isin(RECURRING_CATEGORIES)]
        other = window[unlinked & ~window["category"].isin(RECURRING_CATEGORIES)]
        known = recurring.groupby("cash_day")["amount"].sum().reindex(days, fill_value=0.0)
        other_actual = other.groupby("cash_day")["amount"].sum().reindex(days, fill_value=0.0)
        forecast = point_forecast(book, c, BookConfig(horizon=horizon))
        other_model = (
            forecast.components["other_in"] + forecast.components["other_out"]
        ).to_numpy()
        paths = conditioned_paths(
            ar_draws, real_ar, invoices["day"].to_numpy(), inv_total, c, horizon, args.paths, rng
        ) - conditioned_paths(
            ap_draws, real_ap, bills["day"].to_numpy(), bill_total, c, horizon, args.paths, rng
        )
        paths += known.to_numpy()[None, :]
        ets = CashflowModel(CashflowSpec(kind="ets", target="net")).fit(daily.iloc[:n])
        rows.append(
            {
                "cut-off": str(day_date(c)),
                "book": forecast.net,
                "ETS": ets.predict(horizon)["yhat"].to_numpy(dtype=float),
                "oracle": np.median(paths + other_model[None, :], axis=0),
                "oracle + other flows": np.median(paths + other_actual.to_numpy()[None, :], axis=0),
                "actual": actual,
                "scale": scale,
            }
        )
    labels = ("book", "ETS", "oracle", "oracle + other flows")
    table = pd.DataFrame(
        [
            {
                "cut-off": r["cut-off"],
                **{k: float(np.mean(np.abs(r["actual"] - r[k])) / r["scale"]) for k in labels},
            }
            for r in rows
        ]
    ).set_index("cut-off")
    print(
        f"\nMASE on the last {len(rows)} cut-offs x {horizon} days (bench_ml: its 4 outer folds):"
    )
    print(table.round(3).to_string())
    mean = table.mean()
    print("mean        " + "  ".join(f"{k} {mean[k]:.3f}" for k in labels))
    target = 0.8 * mean["ETS"]
    print(
        f"\n#17's target for the book model: MASE <= {target:.3f} (20 % below ETS). The oracle "
        f"reaches {mean['oracle']:.3f} ({100 * (1 - mean['oracle'] / mean['ETS']):+.1f} % vs "
        f"ETS); knowing every unlinked bank row in advance too, {mean['oracle + other flows']:.3f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
