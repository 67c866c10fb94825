"""Reading the ML inputs: the two silver training sets and the generator's planted labels.

Only rows up to the logical date are read, and only from a silver built as of that date (its
``as_of_date`` column): a silver rebuilt later may hold corrections that landed after the
logical date, so a training or prediction run for an earlier date refuses it and says which run
rebuilds silver as of that date. Missing inputs become a :class:`StageError` that says which
stage produces them.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)
UC09_TABLE = "ml_training_uc09_daily_cashflow"
UC10_TABLE = "ml_training_uc10_transactions"
LABELS_FILE = "bank_transaction_anomalies.parquet"


def _require(settings: Settings, table: str, end: dt.date) -> str:
    warehouse = get_warehouse(settings)
    if not warehouse.table_exists(settings.silver_schema, table):
        raise StageError(
            f"{settings.silver_schema}.{table} is not in the warehouse: "
            "run the daily-etl pipeline (stage dbt-silver) first"
        )
    qualified = f"{settings.silver_schema}.{table}"
    _check_as_of(settings, qualified, table, end)
    return qualified


def _check_as_of(settings: Settings, qualified: str, table: str, end: dt.date) -> None:
    """Refuse a silver built as of a date after ``end``: it may hold later corrections."""
    warehouse = get_warehouse(settings)
    has_column = warehouse.query(
        "select count(*) as n from information_schema.columns "
        f"where table_schema = '{settings.silver_schema}' and table_name = '{table}' "
        "and column_name = 'as_of_date'"
    )
    if not int(has_column["n"].iloc[0]):
        log.warning(
            "%s has no as_of_date column (not built by this dbt project): cannot check that "
            "it holds only what was known on %s",
            qualified,
            end,
        )
        return
    built = warehouse.query(f"select max(as_of_date) as as_of from {qualified}")["as_of"].iloc[0]
    if built is None or pd.isna(built):
        return  # an empty table: the loaders say so
    as_of = pd.Timestamp(built).date()
    if as_of > end:
        raise StageError(
            f"{qualified} was built as of {as_of}, after this run's logical date {end}: it may "
            f"hold corrections that landed later. Rebuild silver as of {end} first "
            f"(smepulse run daily-etl --date {end}), then re-run this pipeline for {end}"
        )
    if as_of < end:
        log.warning(
            "%s was built as of %s, before this run's logical date %s: days after %s are "
            "not in it yet (run daily-etl for %s first)",
            qualified,
            as_of,
            end,
            as_of,
            end,
        )


def load_daily_cashflow(settings: Settings, end: dt.date) -> pd.DataFrame:
    """Daily cash flow up to ``end``: cash_date (date), inflow/outflow/net (float), no gaps.

    Days missing from the table are filled with zeros (the contract already zero-fills; this
    keeps the models safe if a producer does not).
    """
    table = _require(settings, UC09_TABLE, end)
    frame = get_warehouse(settings).query(
        f"select cash_date, inflow_vnd, outflow_vnd, net_vnd from {table} "
        f"where cash_date <= date '{end.isoformat()}' order by cash_date"
    )
    if frame.empty:
        raise StageError(f"{table} has no rows up to {end}: nothing to train on")
    frame["cash_date"] = pd.to_datetime(frame["cash_date"])
    last = frame["cash_date"].max().date()
    stale = (end - last).days
    if stale > settings.ml_forecast_horizon_days:
        # Longer than a horizon without one cash movement is not a quiet spell of a trading
        # business but a logical date past the data (a PipelineRun without spec.logicalDate
        # takes today's; on the real node that ended in an IndexError deep in the book model).
        raise StageError(
            f"{table} ends on {last}, {stale} days before the logical date {end}: run with "
            f"the logical date of the data (--logical-date / spec.logicalDate {last}), or run "
            "daily-etl for the newer days first"
        )
    full = pd.date_range(frame["cash_date"].min(), frame["cash_date"].max(), freq="D")
    frame = (
        frame.set_index("cash_date")
        .reindex(full, fill_value=0)
        .rename_axis("cash_date")
        .reset_index()
    )
    for column in ("inflow_vnd", "outflow_vnd", "net_vnd"):
        frame[column] = frame[column].astype(float)
    frame["cash_date"] = frame["cash_date"].dt.date
    return frame


def load_transactions(settings: Settings, end: dt.date) -> pd.DataFrame:
    """Bank transactions whose UTC timestamp is before ``end`` + 2 days.

    The exact cut-off (local business date ≤ ``end``) is applied by ``build_features``, which
    knows the time zone; the extra day here only bounds the read.
    """
    table = _require(settings, UC10_TABLE, end)
    bound = (end + dt.timedelta(days=2)).isoformat()
    frame = get_warehouse(settings).query(
        "select txn_id, bank_account_id, txn_at, amount_vnd, counterparty, category "
        f"from {table} where txn_at < timestamp '{bound} 00:00:00'"
    )
    if frame.empty:
        raise StageError(f"{table} has no transactions up to {end}: nothing to score")
    frame["txn_id"] = frame["txn_id"].astype(str)
    frame["amount_vnd"] = frame["amount_vnd"].astype(float)
    frame["txn_at"] = pd.to_datetime(frame["txn_at"])
    return frame


def load_anomaly_labels(settings: Settings) -> set[str] | None:
    """Planted anomaly txn_ids from the generator, or None when there is no label file.

    Real customers have no labels; the synthetic data set has them beside (never inside) bronze.
    """
    path = settings.labels_dir / LABELS_FILE
    if not path.exists():
        log.info("no anomaly labels at %s: UC10 is evaluated without labels", path)
        return None
    labels = pd.read_parquet(path, columns=["txn_id"])
    return set(labels["txn_id"].astype(str))
