"""The ``validate-bronze`` stage: check every bronze file a run reads against the contract.

Bronze as of the logical date D is every file under ``<table>/ingest_date=<d>/`` with d <= D:
exactly what dbt reads for D (later ingest dates belong to later runs and are left alone, so
backfills validate what they will read). Checked: missing tables, unreadable files,
missing/extra columns and wrong types, null and duplicate keys within one ingest date, orphan
foreign keys (against all ingest dates of the parent up to D), negative amounts or
quantities, due dates before issue dates, event dates after D, and values outside an enum.

Point in time: an ``updated_at`` at or after D's cutoff (local midnight after D plus the
extract lag) is a ``late_stamp`` *warning*: the row waits for the next day's run (dbt does not
read it for D). An ``updated_at`` more than a day after its ingest date is a wrong clock
(``future_date`` error), and so is an event date in the future.

Clean ingest dates are cached by the checksums of their files (``<home>/validation/
cache.json``): every rule only gets easier to pass as D moves forward (limits move later,
parent key sets grow), so an ingest date that passed for D0 passes for every D >= D0 and is
not read again; only the key columns of parent tables are read for the foreign-key checks.

All problems are collected, printed as ``<file>: <key or row>: <rule>: <detail>`` with a
summary, and written as JSON to ``<home>/validation/<D>.json``; any problem fails the stage
(exit 1), so nothing downstream runs on bad input. Warnings are printed and recorded only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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

from smepulse.bronze.contract import ALL_TABLES, CONTRACT_VERSION, TableContract
from smepulse.bronze.store import BronzeFile, BronzeStore, open_store
from smepulse.bronze.validate_rules import (
    MAX_LISTED,
    Problems,
    Window,
    check_duplicates,
    check_foreign_keys,
    check_rows,
    usable_columns,
)
from smepulse.errors import StageError
from smepulse.settings import Settings

log = logging.getLogger(__name__)

#: Bump when a rule changes so that cached "clean" verdicts are not reused.
RULES_VERSION = "2"


@dataclass
class ValidationResult:
    """What ``validate`` found; ``ok`` when there is no problem (warnings allowed)."""

    logical_date: dt.date
    bronze_root: str
    problems: Problems
    warnings: Problems = field(default_factory=Problems)
    files: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    ignored_later_files: int = 0
    cached_files: int = 0
    cutoff_utc: dt.datetime | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.problems.total == 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "contract_version": CONTRACT_VERSION,
            "logical_date": self.logical_date.isoformat(),
            "cutoff_utc": self.cutoff_utc.isoformat() if self.cutoff_utc else None,
            "bronze_root": self.bronze_root,
            "ok": self.ok,
            "problem_count": self.problems.total,
            "files_with_problems": len(self.problems.files),
            "problem_counts": dict(sorted(self.problems.counts.items())),
            "problems_listed_per_rule": MAX_LISTED,
            "problems": [vars(p) for p in self.problems.listed],
            "warning_count": self.warnings.total,
            "warning_counts": dict(sorted(self.warnings.counts.items())),
            "warnings": [vars(p) for p in self.warnings.listed],
            "rows": self.rows,
            "files": self.files,
            "ignored_later_files": self.ignored_later_files,
            "cached_files": self.cached_files,
            "seconds": round(self.seconds, 3),
        }


def cutoff_utc(day: dt.date, timezone: str, lag_hours: float) -> dt.datetime:
    """Local midnight after ``day`` in the business time zone plus the extract lag, in UTC."""
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), ZoneInfo(timezone))
    return (local + dt.timedelta(hours=lag_hours)).astimezone(dt.UTC)


def _read(
    store: BronzeStore, f: BronzeFile, problems: Problems, columns: list[str] | None = None
) -> pa.Table | None:
    try:
        return store.read_file(f.uri, columns)
    except Exception as exc:  # any reader error means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        problems.add(
            f.uri,
            "unreadable_file",
            1,
            [("-", f"not a readable Parquet file ({reason}); re-export it")],
        )
        return None


class CleanCache:
    """Ingest dates (per table) that passed every rule, keyed by their files' checksums.

    The value is the first logical date they passed for; a later run reuses the verdict.
    A corrupt or foreign cache file is ignored (everything is validated again).
    """

    def __init__(self, path: Path | None, salt: str) -> None:
        self.path = path
        self.salt = salt
        self.entries: dict[str, str] = {}
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.entries = {str(k): str(v) for k, v in loaded.items()}
            except (OSError, ValueError):
                log.warning("ignoring unreadable validation cache %s", path)

    def key(self, table: str, ingest_date: dt.date, files: list[BronzeFile]) -> str | None:
        if any(not f.checksum for f in files):
            return None
        digest = hashlib.sha256(self.salt.encode())
        for f in sorted(files):
            digest.update(f"\n{f.uri}\t{f.checksum}".encode())
        return f"{table}/{ingest_date.isoformat()}/{digest.hexdigest()[:32]}"

    def clean_for(self, key: str | None, logical_date: dt.date) -> bool:
        if key is None or key not in self.entries:
            return False
        return dt.date.fromisoformat(self.entries[key]) <= logical_date

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)


def validate(
    store: BronzeStore,
    logical_date: dt.date,
    timezone: str = "Asia/Ho_Chi_Minh",
    extract_lag_hours: float = 2.0,
    cache_path: Path | None = None,
) -> ValidationResult:
    """Check bronze as of ``logical_date`` against the contract; never raises on bad data."""
    started = time.monotonic()
    result = ValidationResult(logical_date, store.root, Problems())
    problems, warnings = result.problems, result.warnings
    cutoff = cutoff_utc(logical_date, timezone, extract_lag_hours)
    result.cutoff_utc = cutoff
    cache = CleanCache(
        cache_path, f"{RULES_VERSION}|{CONTRACT_VERSION}|{timezone}|{extract_lag_hours}"
    )
    parent_columns = {
        fk.parent: fk.parent_column for c in ALL_TABLES.values() for fk in c.foreign_keys
    }
    loaded: dict[str, list[tuple[BronzeFile, pa.Table, set[str]]]] = {}
    parent_chunks: dict[str, list[pa.Array]] = {}
    fresh_groups: dict[str, list[BronzeFile]] = {}
    for name, c in ALL_TABLES.items():
        all_files = store.list_files(name)
        files = [f for f in all_files if f.ingest_date <= logical_date]
        result.ignored_later_files += len(all_files) - len(files)
        if not files and c.optional:
            continue
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
        by_date: dict[dt.date, list[BronzeFile]] = {}
        for f in files:
            by_date.setdefault(f.ingest_date, []).append(f)
        rows = 0
        for ingest_date, group in sorted(by_date.items()):
            key = cache.key(name, ingest_date, group)
            cached = cache.clean_for(key, logical_date)
            if not cached and key is not None:
                fresh_groups[key] = group
            window = Window(
                logical_date,
                ingest_date,
                cutoff,
                cutoff_utc(ingest_date + dt.timedelta(days=1), timezone, extract_lag_hours),
            )
            for f in group:
                columns = None
                if cached:
                    result.cached_files += 1
                    if name not in parent_columns:
                        result.files.append(_file_entry(f, None, cached=True))
                        continue
                    columns = [parent_columns[name]]
                data = _read(store, f, problems, columns)
                result.files.append(_file_entry(f, data, cached=cached))
                if data is None:
                    continue
                rows += data.num_rows
                if name in parent_columns and parent_columns[name] in data.schema.names:
                    parent_chunks.setdefault(name, []).append(
                        data.column(parent_columns[name]).cast(pa.string())
                    )
                if cached:
                    continue
                usable = usable_columns(c, data.schema, f.uri, problems)
                check_rows(c, data, usable, f.uri, window, problems, warnings)
                loaded[name].append((f, data, usable))
        result.rows[name] = rows
        _duplicates(c, loaded[name], problems)
    parent_keys = {
        parent: pc.unique(pa.chunked_array(chunks, pa.string()).combine_chunks())
        for parent, chunks in parent_chunks.items()
        if chunks
    }
    for name, entries in loaded.items():
        for f, data, usable in entries:
            check_foreign_keys(ALL_TABLES[name], data, usable, f.uri, parent_keys, problems)
    if result.ok:
        # Only a wholly clean run records verdicts: a parent that failed to load would
        # otherwise let its children's foreign keys pass unchecked.
        flagged = warnings.files
        for key, group in fresh_groups.items():
            if not any(f.uri in flagged for f in group):
                cache.entries[key] = logical_date.isoformat()
        cache.save()
    result.seconds = time.monotonic() - started
    return result


def _file_entry(f: BronzeFile, data: pa.Table | None, cached: bool) -> dict[str, Any]:
    return {
        "table": f.table,
        "ingest_date": f.ingest_date.isoformat(),
        "uri": f.uri,
        "bytes": f.size,
        "rows": data.num_rows if data is not None else None,
        "cached": cached,
    }


def _duplicates(
    c: TableContract, entries: list[tuple[BronzeFile, pa.Table, set[str]]], problems: Problems
) -> None:
    by_date: dict[dt.date, list[tuple[str, pa.Table]]] = {}
    for f, data, usable in entries:
        if all(k in usable for k in c.key):
            by_date.setdefault(f.ingest_date, []).append((f.uri, data))
    for ingest_date, parts in sorted(by_date.items()):
        check_duplicates(c, parts, ingest_date, problems)


def print_report(result: ValidationResult, console: Console) -> None:
    """The listed problems, then a summary table per rule."""
    for p in result.problems.listed:
        console.print(str(p), markup=False, highlight=False, soft_wrap=True)
    for w in result.warnings.listed:
        console.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    table = Table(title=f"validate-bronze {result.logical_date}: {result.bronze_root}")
    table.add_column("rule")
    table.add_column("problems", justify="right")
    for rule, n in sorted(result.problems.counts.items()):
        table.add_row(rule, f"{n:,}")
    for rule, n in sorted(result.warnings.counts.items()):
        table.add_row(f"{rule} (warning)", f"{n:,}")
    if result.ok and not result.warnings.total:
        table.add_row("(none)", "0")
    console.print(table)
    total_rows = sum(result.rows.values())
    console.print(
        f"{len(result.files)} files ({result.cached_files} clean before, by checksum), "
        f"{total_rows:,} rows read in {result.seconds:.1f} s"
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
    result = validate(
        open_store(settings),
        settings.business_date,
        settings.timezone,
        settings.extract_lag_hours,
        cache_path=settings.home / "validation" / "cache.json",
    )
    path = write_result(result, settings.home)
    print_report(result, Console())
    if result.warnings.total:
        log.warning(
            "%d row(s) stamped after the cutoff %s UTC of %s wait for the next day's run "
            "(SMEPULSE_EXTRACT_LAG_HOURS=%s); details in %s",
            result.warnings.total,
            f"{result.cutoff_utc:%Y-%m-%d %H:%M}",
            result.logical_date,
            settings.extract_lag_hours,
            path,
        )
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
