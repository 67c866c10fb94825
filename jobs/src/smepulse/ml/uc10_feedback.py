"""UC10 alert feedback: users' verdicts on alerts, stored as the bronze table ``alert_feedback``.

``smepulse alerts review TXN_ID --confirmed | --false-positive`` records one verdict as one new
Parquet file (written to a hidden temporary name, then renamed: a reader sees the whole file or
nothing), under ``alert_feedback/ingest_date=<today, local>/``. Nothing is ever rewritten, so
nothing recorded can be lost; a later verdict on the same transaction (newest ``updated_at``)
replaces the earlier one for every reader. Before writing, every existing verdict file is
checked against the contract with the same rules as ``validate-bronze``; a malformed file
refuses the review with file, key and rule named (and writes nothing).

The verdicts are UC10's labels (:func:`load_labels`): confirmed = anomaly, false positive =
normal. A run for logical date D reads the verdict files of ingest dates ≤ D. The planted
labels of the synthetic generator, when present, are labels too (every transaction labelled);
verdict-only labels cover the reviewed transactions only, and evaluation then ranks those.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa

from smepulse.bronze.contract import ALERT_FEEDBACK, stamped_schema
from smepulse.bronze.store import BronzeStore, open_store
from smepulse.bronze.validate import cutoff_utc
from smepulse.bronze.validate_rules import (
    Problems,
    Window,
    check_duplicates,
    check_rows,
    usable_columns,
)
from smepulse.errors import StageError
from smepulse.ml.data import LABELS_FILE
from smepulse.settings import Settings

log = logging.getLogger(__name__)
TABLE = ALERT_FEEDBACK.name
CONFIRMED, FALSE_POSITIVE = "confirmed", "false_positive"


class FeedbackError(StageError):
    """The verdict files (or a new verdict) break the contract; nothing was written."""


def check_files(store: BronzeStore, settings: Settings) -> Problems:
    """Every ``alert_feedback`` file against the contract (the ``validate-bronze`` rules of one
    table: readable, columns and types, nulls, enums, dates, keys unique per ingest date)."""
    problems = Problems()
    now_local = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    by_date: dict[dt.date, list[tuple[str, pa.Table]]] = {}
    for f in store.list_files(TABLE):
        try:
            data = store.read_file(f.uri)
        except Exception as exc:  # any reader error means the same thing to the user
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.add(
                f.uri, "unreadable_file", 1, [("-", f"not a readable Parquet file ({reason})")]
            )
            continue
        window = Window(
            max(now_local, f.ingest_date),
            f.ingest_date,
            cutoff_utc(
                max(now_local, f.ingest_date), settings.timezone, settings.extract_lag_hours
            ),
            cutoff_utc(
                f.ingest_date + dt.timedelta(days=1), settings.timezone, settings.extract_lag_hours
            ),
        )
        usable = usable_columns(ALERT_FEEDBACK, data.schema, f.uri, problems)
        check_rows(ALERT_FEEDBACK, data, usable, f.uri, window, problems)
        if all(k in usable for k in ALERT_FEEDBACK.key):
            by_date.setdefault(f.ingest_date, []).append((f.uri, data))
    for ingest_date, parts in sorted(by_date.items()):
        check_duplicates(ALERT_FEEDBACK, parts, ingest_date, problems)
    return problems


def _require_clean(store: BronzeStore, settings: Settings) -> None:
    problems = check_files(store, settings)
    if problems.total:
        first = problems.listed[0]
        raise FeedbackError(
            f"{first} ({problems.total} problem(s) in {len(problems.files)} verdict file(s)); "
            "fix or remove that file — nothing was written"
        )


def read_verdicts(store: BronzeStore, end: dt.date | None = None) -> pd.DataFrame:
    """The current verdict per txn_id (newest ``updated_at``) of ingest dates ≤ ``end``."""
    columns = list(ALERT_FEEDBACK.column_names)
    parts = [
        store.read_file(f.uri).select(columns).to_pandas()
        for f in store.list_files(TABLE)
        if end is None or f.ingest_date <= end
    ]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True)
    frame["txn_id"] = frame["txn_id"].astype(str)
    frame = frame.sort_values(["updated_at", "feedback_id"], kind="mergesort")
    current: pd.DataFrame = frame.drop_duplicates("txn_id", keep="last").reset_index(drop=True)
    return current


def record_verdict(
    settings: Settings,
    txn_id: str,
    verdict: str,
    *,
    note: str | None = None,
    alert: dict[str, Any] | None = None,
    reviewed_by: str | None = None,
) -> str:
    """Check the existing verdict files, then write one new verdict file; return its URI."""
    if verdict not in (CONFIRMED, FALSE_POSITIVE):
        raise FeedbackError(f"verdict must be {CONFIRMED} or {FALSE_POSITIVE}, not {verdict!r}")
    store = open_store(settings)
    _require_clean(store, settings)
    now = dt.datetime.now(dt.UTC)
    ingest = now.astimezone(ZoneInfo(settings.timezone)).date()
    alert = alert or {}
    alert_date = alert.get("logical_date")
    row = {
        "feedback_id": f"FB-{now:%Y%m%dT%H%M%S%f}-{txn_id}",
        "txn_id": txn_id,
        "verdict": verdict,
        "note": note,
        "model_name": alert.get("model_name"),
        "model_version": None
        if alert.get("model_version") is None
        else str(alert["model_version"]),
        "alert_date": pd.Timestamp(alert_date).date() if alert_date is not None else None,
        "reviewed_by": reviewed_by,
        "updated_at": now,
    }
    data = pa.Table.from_pylist([row], schema=stamped_schema(TABLE))
    part = f"verdict-{now:%Y%m%dT%H%M%S%f}-{txn_id}"
    if any(f.uri.endswith(f"/{part}.parquet") for f in store.list_files(TABLE)):
        raise FeedbackError(f"a verdict on {txn_id} was recorded this very instant; try again")
    return store.write_table(TABLE, ingest, data, part=part)


@dataclass
class Labels:
    """UC10 labels. ``reviewed`` None means every transaction is labelled (planted labels);
    otherwise only the reviewed transactions are."""

    positives: set[str]
    reviewed: set[str] | None
    source: str

    @property
    def usable(self) -> bool:
        """Both classes exist somewhere (a ranking can be scored)."""
        if not self.positives:
            return False
        return self.reviewed is None or bool(self.reviewed - self.positives)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "positives": len(self.positives),
            "reviewed": None if self.reviewed is None else len(self.reviewed),
        }


def load_labels(settings: Settings, end: dt.date) -> Labels:
    """Planted labels (if the generator left them) combined with users' verdicts up to ``end``.

    A verdict wins over a planted label (the user looked at the transaction).
    """
    verdicts = read_verdicts(open_store(settings), end)
    confirmed = set(verdicts.loc[verdicts["verdict"] == CONFIRMED, "txn_id"])
    rejected = set(verdicts.loc[verdicts["verdict"] == FALSE_POSITIVE, "txn_id"])
    planted_path = settings.labels_dir / LABELS_FILE
    if planted_path.exists():
        planted = set(pd.read_parquet(planted_path, columns=["txn_id"])["txn_id"].astype(str))
        source = "planted+verdicts" if len(verdicts) else "planted"
        return Labels((planted - rejected) | confirmed, None, source)
    if len(verdicts):
        return Labels(confirmed, confirmed | rejected, "verdicts")
    log.info("no anomaly labels (no verdicts, no planted labels): UC10 is evaluated without labels")
    return Labels(set(), set(), "none")


def current_alerts(settings: Settings) -> pd.DataFrame:
    """The alerts of the last ``uc10-detect`` run (``gold.ml_anomaly_alerts``) with the verdict
    recorded on each so far (NaN when none)."""
    from smepulse.warehouse import get_warehouse

    warehouse = get_warehouse(settings)
    if not warehouse.table_exists(settings.gold_schema, "ml_anomaly_alerts"):
        raise StageError(
            f"{settings.gold_schema}.ml_anomaly_alerts is not in the warehouse: "
            "run the ml-predict pipeline (stage uc10-detect) first"
        )
    alerts = warehouse.query(
        f"select * from {settings.gold_schema}.ml_anomaly_alerts order by anomaly_rank"
    )
    alerts["txn_id"] = alerts["txn_id"].astype(str)
    verdicts = read_verdicts(open_store(settings))[["txn_id", "verdict", "note"]]
    return alerts.merge(verdicts, on="txn_id", how="left")


def review(settings: Settings, txn_id: str, verdict: str, note: str | None) -> str:
    """Record a verdict on ``txn_id``; the alert's model and date come from the current alerts.

    A transaction that is not among them (an anomaly the detector missed, or an alert of an
    earlier week) may be reviewed too; validate-bronze checks that it exists.
    """
    alert: dict[str, Any] | None = None
    try:
        alerts = current_alerts(settings)
    except StageError:
        alerts = pd.DataFrame(columns=["txn_id"])
    match = alerts[alerts["txn_id"] == txn_id]
    if len(match):
        alert = {str(k): v for k, v in match.iloc[0].to_dict().items()}
    return record_verdict(settings, txn_id, verdict, note=note, alert=alert)
