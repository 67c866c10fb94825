"""The ``validate-bronze`` stage: check every bronze file against the contract before silver.

Bronze as of the logical date D is every file under ``<table>/ingest_date=<d>/`` with d <= D
(later ingest dates belong to later runs and are left alone, so backfills validate what they
will read). Checked: missing tables, unreadable files, missing/extra columns and wrong types,
null and duplicate keys within one ingest date, orphan foreign keys (against all ingest dates
of the parent), negative amounts or quantities, due dates before issue dates, dates after D
(timestamps up to the end of D in the business time zone), and values outside an enum.

All problems are collected, printed as ``<file>: <key or row>: <rule>: <detail>`` with a
summary, and written as JSON to ``<home>/validation/<D>.json``; any problem fails the stage
(exit 1), so nothing downstream runs on bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from smepulse.bronze.contract import CONTRACT_VERSION, TABLES, TableContract
from smepulse.bronze.store import BronzeFile, BronzeStore, open_store
from smepulse.bronze.validate_rules import (
    MAX_LISTED,
    Problems,
    check_duplicates,
    check_foreign_keys,
    check_rows,
    usable_columns,
)
from smepulse.errors import StageError
from smepulse.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """What ``validate`` found; ``ok`` when there is no problem."""

    logical_date: dt.date
    bronze_root: str
    problems: Problems
    files: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    ignored_later_files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.problems.total == 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "contract_version": CONTRACT_VERSION,
            "logical_date": self.logical_date.isoformat(),
            "bronze_root": self.bronze_root,
            "ok": self.ok,
            "problem_count": self.problems.total,
            "files_with_problems": len(self.problems.files),
            "problem_counts": dict(sorted(self.problems.counts.items())),
            "problems_listed_per_rule": MAX_LISTED,
            "problems": [vars(p) for p in self.problems.listed],
            "rows": self.rows,
            "files": self.files,
            "ignored_later_files": self.ignored_later_files,
            "seconds": round(self.seconds, 3),
        }


def _end_of_day_utc(day: dt.date, timezone: str) -> dt.datetime:
    """The first instant after ``day`` in the business time zone, in UTC."""
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), ZoneInfo(timezone))
    return local.astimezone(dt.UTC)


def _read(store: BronzeStore, f: BronzeFile, problems: Problems) -> pa.Table | None:
    try:
        return store.read_file(f.uri)
    except Exception as exc:  # any reader error means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        problems.add(
            f.uri,
            "unreadable_file",
            1,
            [("-", f"not a readable Parquet file ({reason}); re-export it")],
        )
        return None


def validate(
    store: BronzeStore, logical_date: dt.date, timezone: str = "Asia/Ho_Chi_Minh"
) -> ValidationResult:
    """Check bronze as of ``logical_date`` against the contract; never raises on bad data."""
    started = time.monotonic()
    result = ValidationResult(logical_date, store.root, Problems())
    problems = result.problems
    ts_limit = _end_of_day_utc(logical_date, timezone)
    loaded: dict[str, list[tuple[BronzeFile, pa.Table, set[str]]]] = {}
    for name, c in TABLES.items():
        all_files = store.list_files(name)
        files = [f for f in all_files if f.ingest_date <= logical_date]
        result.ignored_later_files += len(all_files) - len(files)
        if not files:
            problems.add(
                f"{store.root.rstrip('/')}/{name}/",
                "missing_table",
                1,
                [
                    (
                        "-",
                        f"no Parquet files under {name}/ingest_date=YYYY-MM-DD/ dated on or before {logical_date}",
                    )
                ],
            )
            continue
        loaded[name] = []
        for f in files:
            data = _read(store, f, problems)
            result.files.append(
                {
                    "table": name,
                    "ingest_date": f.ingest_date.isoformat(),
                    "uri": f.uri,
                    "bytes": f.size,
                    "rows": data.num_rows if data is not None else None,
                }
            )
            if data is None:
                continue
            usable = usable_columns(c, data.schema, f.uri, problems)
            check_rows(c, data, usable, f.uri, logical_date, ts_limit, problems)
            loaded[name].append((f, data, usable))
        result.rows[name] = sum(d.num_rows for _, d, _ in loaded[name])
        _duplicates(c, loaded[name], problems)
    parent_keys = _parent_keys(loaded)
    for name, entries in loaded.items():
        for f, data, usable in entries:
            check_foreign_keys(TABLES[name], data, usable, f.uri, parent_keys, problems)
    result.seconds = time.monotonic() - started
    return result


def _duplicates(
    c: TableContract, entries: list[tuple[BronzeFile, pa.Table, set[str]]], problems: Problems
) -> None:
    by_date: dict[dt.date, list[tuple[str, pa.Table]]] = {}
    for f, data, usable in entries:
        if all(k in usable for k in c.key):
            by_date.setdefault(f.ingest_date, []).append((f.uri, data))
    for ingest_date, parts in sorted(by_date.items()):
        check_duplicates(c, parts, ingest_date, problems)


def _parent_keys(
    loaded: dict[str, list[tuple[BronzeFile, pa.Table, set[str]]]],
) -> dict[str, pa.Array]:
    """Key sets of parent tables over all their ingest dates (the newest snapshot's keys)."""
    parents = {fk.parent: fk.parent_column for c in TABLES.values() for fk in c.foreign_keys}
    keys: dict[str, pa.Array] = {}
    for parent, column in parents.items():
        chunks = [
            d.column(column).cast(pa.string()) for _, d, u in loaded.get(parent, []) if column in u
        ]
        if chunks:
            keys[parent] = pc.unique(pa.chunked_array(chunks, pa.string()).combine_chunks())
    return keys


def print_report(result: ValidationResult, console: Console) -> None:
    """The listed problems, then a summary table per rule."""
    for p in result.problems.listed:
        console.print(str(p), markup=False, highlight=False, soft_wrap=True)
    table = Table(title=f"validate-bronze {result.logical_date}: {result.bronze_root}")
    table.add_column("rule")
    table.add_column("problems", justify="right")
    for rule, n in sorted(result.problems.counts.items()):
        table.add_row(rule, f"{n:,}")
    if result.ok:
        table.add_row("(none)", "0")
    console.print(table)
    total_rows = sum(result.rows.values())
    console.print(
        f"{len(result.files)} files, {total_rows:,} rows checked in {result.seconds:.1f} s"
    )


def write_result(result: ValidationResult, home: Path) -> Path:
    """Write the machine-readable result to ``<home>/validation/<logical date>.json``."""
    path = home / "validation" / f"{result.logical_date.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def run_stage(settings: Settings) -> None:
    """Stage ``validate-bronze``: raise StageError (exit 1) if bronze breaks the contract."""
    result = validate(open_store(settings), settings.business_date, settings.timezone)
    path = write_result(result, settings.home)
    print_report(result, Console())
    if result.ignored_later_files:
        log.info(
            "ignored %d file(s) of ingest dates after %s",
            result.ignored_later_files,
            result.logical_date,
        )
    if not result.ok:
        first = result.problems.listed[0] if result.problems.listed else "?"
        raise StageError(
            f"bronze validation failed: {result.problems.total} problems in "
            f"{len(result.problems.files)} files (first: {first}); details in {path}"
        )
    log.info(
        "bronze valid: %d files, %d rows (contract %s); result in %s",
        len(result.files),
        sum(result.rows.values()),
        CONTRACT_VERSION,
        path,
    )
