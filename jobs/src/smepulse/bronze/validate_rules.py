"""The checks of ``validate-bronze``, one function per rule, over Arrow tables.

Every problem names the file, the key (or row) and the rule. Problems are counted in full but
only the first :data:`MAX_LISTED` of each rule are kept with details, so a badly broken
export still gives a short, readable report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smepulse.bronze.contract import TableContract

MAX_LISTED = 20

#: Every rule validate-bronze reports, with what it means (rendered into the contract doc).
RULES: dict[str, str] = {
    "missing_table": "a contract table has no file on or before the logical date",
    "unreadable_file": "the file is not readable Parquet (truncated, corrupt, not Parquet)",
    "missing_column": "a contract column is absent",
    "extra_column": "a column not in the contract is present",
    "wrong_type": "a column's type differs from the contract's",
    "null_key": "a key column is null",
    "null_value": "a non-nullable column is null",
    "duplicate_key": "a key appears more than once within one ingest date",
    "orphan_foreign_key": "a foreign key has no parent row in any ingest date",
    "negative_value": "a money, quantity, rate or days column is negative",
    "due_before_issue": "due_date is before issue_date",
    "date_order": "updated_at is before created_at",
    "future_date": (
        "an event date lies after the logical date (due dates excepted), an event timestamp "
        "after the day's end plus the extract lag, or an audit stamp more than a day after "
        "its ingest date plus the lag"
    ),
    "bad_enum": "a value outside the accepted values",
}

#: Warnings: reported, never fail the run.
WARNINGS: dict[str, str] = {
    "late_stamp": (
        "updated_at is after the logical day's end plus the extract lag (an extract taken "
        "after the run's cutoff): the row waits for the next day's run"
    ),
}

#: Audit stamps: when a row was written, not when its event happened. ``updated_at`` decides
#: which run sees a row (point in time); ``created_at`` is bounded by it (rule date_order).
AUDIT_STAMP = "updated_at"
_NOT_EVENTS = frozenset({"created_at", AUDIT_STAMP})
_UTC_NAMES = {"UTC", "Etc/UTC", "+00:00", "Z", "utc"}


@dataclass(frozen=True)
class Problem:
    """One contract violation: ``<file>: <where>: <rule>: <detail>``."""

    file: str
    where: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.rule}: {self.detail}"


@dataclass
class Problems:
    """All problems found: full counts, the first ``MAX_LISTED`` of each rule in detail."""

    listed: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def room(self, rule: str) -> int:
        return MAX_LISTED - sum(1 for p in self.listed if p.rule == rule)

    def add(self, file: str, rule: str, count: int, details: list[tuple[str, str]]) -> None:
        """Record ``count`` violations of ``rule`` in ``file``; ``details`` are (where, detail)."""
        if count <= 0:
            return
        self.counts[rule] = self.counts.get(rule, 0) + count
        self.files.add(file)
        for where, detail in details[: max(self.room(rule), 0)]:
            self.listed.append(Problem(file, where, rule, detail))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def same_type(found: pa.DataType, expected: pa.DataType) -> bool:
    """Exact type equality, except that large_string counts as string and any spelling of the
    UTC zone counts as UTC (writers differ on both, readers do not care)."""
    if found.equals(expected):
        return True
    if pa.types.is_string(expected) and pa.types.is_large_string(found):
        return True
    if pa.types.is_timestamp(expected) and pa.types.is_timestamp(found):
        return bool(
            found.unit == expected.unit and found.tz in _UTC_NAMES and expected.tz in _UTC_NAMES
        )
    return False


def usable_columns(c: TableContract, schema: pa.Schema, file: str, problems: Problems) -> set[str]:
    """Check columns and types; return the contract columns present with the right type."""
    names = set(schema.names)
    missing = [col for col in c.column_names if col not in names]
    extra = [col for col in schema.names if col not in c.schema.names]
    problems.add(
        file, "missing_column", len(missing), [("-", f"column {m!r} is missing") for m in missing]
    )
    problems.add(
        file,
        "extra_column",
        len(extra),
        [("-", f"column {x!r} is not in the contract") for x in extra],
    )
    usable: set[str] = set()
    for col in c.columns:
        if col.name not in names:
            continue
        found = schema.field(col.name).type
        if same_type(found, col.type):
            usable.add(col.name)
        else:
            problems.add(
                file,
                "wrong_type",
                1,
                [("-", f"column {col.name!r}: expected {col.type}, found {found}")],
            )
    return usable


def _zero(type_: pa.DataType) -> pa.Scalar:
    return pa.scalar(Decimal(0) if pa.types.is_decimal(type_) else 0, type_)


def _indices(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    filled = pc.fill_null(mask, False)
    return np.flatnonzero(np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool))


def key_labels(c: TableContract, data: pa.Table, usable: set[str], rows: np.ndarray) -> list[str]:
    """``key=value`` labels of rows, or ``row N`` when the key columns are unusable."""
    if not rows.size:
        return []
    if not all(k in usable for k in c.key):
        return [f"row {r}" for r in rows]
    taken = data.select(list(c.key)).take(pa.array(rows))
    values = [taken.column(k).to_pylist() for k in c.key]
    labels = []
    for i, r in enumerate(rows):
        if any(v[i] is None for v in values):
            labels.append(f"row {r}")
        else:
            labels.append(", ".join(f"{k}={v[i]}" for k, v in zip(c.key, values, strict=True)))
    return labels


def _report(
    problems: Problems,
    file: str,
    rule: str,
    c: TableContract,
    data: pa.Table,
    usable: set[str],
    mask: Any,
    detail: Any,
) -> None:
    rows = _indices(mask)
    if not rows.size:
        return
    shown = rows[: max(problems.room(rule), 0)]
    labels = key_labels(c, data, usable, shown)
    problems.add(
        file,
        rule,
        int(rows.size),
        [(w, detail(int(r))) for w, r in zip(labels, shown, strict=True)],
    )


@dataclass(frozen=True)
class Window:
    """What a run for ``logical_date`` may read of one file of ingest date ``ingest_date``.

    ``cutoff`` is local midnight after the logical date plus the extract lag (UTC): rows
    stamped at or after it wait for a later run. ``stamp_limit`` is the latest plausible
    audit stamp of the ingest (local midnight after ingest_date + 1 day, plus the lag): an
    extract is taken on the day after its ingest date at the latest, so a later stamp is a
    wrong clock, not a late extract.
    """

    logical_date: dt.date
    ingest_date: dt.date
    cutoff: dt.datetime
    stamp_limit: dt.datetime


def _before(col: pa.ChunkedArray | pa.Array, limit: dt.datetime) -> Any:
    """``col < limit`` for a timestamp column of any unit."""
    return pc.less(col, pa.scalar(limit, pa.timestamp("us", tz="UTC")).cast(col.type))


def check_rows(
    c: TableContract,
    data: pa.Table,
    usable: set[str],
    file: str,
    window: Window,
    problems: Problems,
    warnings: Problems | None = None,
) -> None:
    """Row rules of one file: nulls, negative values, date order, future dates, enums.

    Rows whose audit stamp lies past the window's cutoff are *waiting* (a ``late_stamp``
    warning, they belong to a later run); their event dates may lie up to the day after the
    ingest date. Event dates of visible rows may not lie after the logical date.
    """
    for name in c.required:
        if name in usable:
            rule = "null_key" if name in c.key else "null_value"
            _report(
                problems,
                file,
                rule,
                c,
                data,
                usable,
                pc.is_null(data.column(name)),
                lambda r, n=name: f"{n} is null",
            )
    for name in c.non_negative:
        if name in usable:
            col = data.column(name)
            _report(
                problems,
                file,
                "negative_value",
                c,
                data,
                usable,
                pc.less(col, _zero(col.type)),
                lambda r, n=name, col=col: f"{n} = {col[r].as_py()} is negative",
            )
    for earlier, later in c.ordered:
        if earlier in usable and later in usable:
            a, b = data.column(earlier), data.column(later)
            rule = "due_before_issue" if later == "due_date" else "date_order"
            _report(
                problems,
                file,
                rule,
                c,
                data,
                usable,
                pc.less(b, a),
                lambda r, a=a, b=b, e=earlier, la=later: (
                    f"{la} {b[r].as_py()} is before {e} {a[r].as_py()}"
                ),
            )
    visible: Any = pa.array(np.ones(data.num_rows, dtype=bool))
    if AUDIT_STAMP in usable and AUDIT_STAMP in c.date_columns:
        stamp = data.column(AUDIT_STAMP)
        visible = pc.fill_null(_before(stamp, window.cutoff), True)
        wrong_clock = pc.invert(pc.fill_null(_before(stamp, window.stamp_limit), True))
        _report(
            problems,
            file,
            "future_date",
            c,
            data,
            usable,
            wrong_clock,
            lambda r, col=stamp: (
                f"{AUDIT_STAMP} {col[r].as_py()} is more than a day after ingest date "
                f"{window.ingest_date} (plus the extract lag)"
            ),
        )
        if warnings is not None:
            late = pc.and_(pc.invert(visible), pc.invert(wrong_clock))
            _report(
                warnings,
                file,
                "late_stamp",
                c,
                data,
                usable,
                late,
                lambda r, col=stamp: (
                    f"{AUDIT_STAMP} {col[r].as_py()} is after the cutoff "
                    f"{window.cutoff:%Y-%m-%d %H:%M} UTC of {window.logical_date}: "
                    "the row waits for the next day's run"
                ),
            )
    waiting_day = max(window.logical_date, window.ingest_date + dt.timedelta(days=1))
    for name in c.date_columns:
        if name not in usable or name in _NOT_EVENTS:
            continue
        col = data.column(name)
        if pa.types.is_timestamp(col.type):
            after_visible = pc.invert(_before(col, window.cutoff))
            after_waiting = pc.invert(_before(col, window.stamp_limit))
            limit_text = f" (cutoff {window.cutoff:%Y-%m-%d %H:%M} UTC, extract lag included)"
        else:
            after_visible = pc.greater(col, pa.scalar(window.logical_date, pa.date32()))
            after_waiting = pc.greater(col, pa.scalar(waiting_day, pa.date32()))
            limit_text = ""
        mask = pc.if_else(visible, after_visible, after_waiting)
        _report(
            problems,
            file,
            "future_date",
            c,
            data,
            usable,
            mask,
            lambda r, n=name, col=col, t=limit_text: (
                f"{n} {col[r].as_py()} is after the logical date {window.logical_date}{t}"
            ),
        )
    for name, values in c.enums.items():
        if name in usable:
            col = data.column(name)
            mask = pc.and_(
                pc.invert(pc.is_in(col, value_set=pa.array(values, col.type))), pc.is_valid(col)
            )
            shown = ", ".join(values) if len(values) <= 8 else f"{len(values)} accepted codes"
            _report(
                problems,
                file,
                "bad_enum",
                c,
                data,
                usable,
                mask,
                lambda r, n=name, col=col, s=shown: f"{n} = {col[r].as_py()!r} is not one of: {s}",
            )


def check_duplicates(
    c: TableContract, parts: list[tuple[str, pa.Table]], ingest_date: dt.date, problems: Problems
) -> None:
    """Keys must be unique within one ingest date (across all its files)."""
    if not parts:
        return
    tables = []
    for i, (_, t) in enumerate(parts):
        keys = t.select(list(c.key))
        tables.append(
            keys.append_column("__file", pa.array(np.full(t.num_rows, i, dtype=np.int32)))
        )
    combined = pa.concat_tables(tables, promote_options="permissive")
    valid = pc.is_valid(combined.column(c.key[0]))
    for k in c.key[1:]:
        valid = pc.and_(valid, pc.is_valid(combined.column(k)))
    combined = combined.filter(valid)  # null keys are reported as null_key
    counts = combined.group_by(list(c.key)).aggregate([("__file", "count"), ("__file", "min")])
    dups = counts.filter(pc.greater(counts.column("__file_count"), 1))
    shown = min(dups.num_rows, max(problems.room("duplicate_key"), 0))
    for i in range(shown):
        key = ", ".join(f"{k}={dups.column(k)[i].as_py()}" for k in c.key)
        n = dups.column("__file_count")[i].as_py()
        file = parts[dups.column("__file_min")[i].as_py()][0]
        problems.add(
            file, "duplicate_key", 1, [(key, f"appears {n} times in ingest_date={ingest_date}")]
        )
    rest = dups.slice(shown).column("__file_min").to_numpy()
    for index, n in zip(*np.unique(rest, return_counts=True), strict=True):
        problems.add(parts[int(index)][0], "duplicate_key", int(n), [])


def check_foreign_keys(
    c: TableContract,
    data: pa.Table,
    usable: set[str],
    file: str,
    parent_keys: dict[str, pa.Array],
    problems: Problems,
) -> None:
    """Every non-null foreign key must exist in its parent's key set (all ingest dates)."""
    for fk in c.foreign_keys:
        if fk.column not in usable or fk.parent not in parent_keys:
            continue
        col = data.column(fk.column).cast(pa.string())
        mask = pc.and_(pc.is_valid(col), pc.invert(pc.is_in(col, value_set=parent_keys[fk.parent])))
        _report(
            problems,
            file,
            "orphan_foreign_key",
            c,
            data,
            usable,
            mask,
            lambda r, fk=fk, col=col: (
                f"{fk.column} = {col[r].as_py()!r} not found in {fk.parent}.{fk.parent_column}"
            ),
        )
