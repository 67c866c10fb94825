"""``smepulse generate-data``: a deterministic synthetic Vietnamese SME, written in the bronze
contract, with the planted bank anomalies' labels beside (never inside) bronze.

The company is a distributor (beverages, dairy, dry food, household goods) selling to retail,
wholesale and enterprise customers across Vietnam's provinces. Same seed and configuration
give byte-identical Parquet files: all randomness comes from one seeded numpy generator per
component, no wall-clock time enters the data, and the writer's options are fixed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smepulse.bronze.contract import CONTRACT_VERSION, TABLE_NAMES
from smepulse.bronze.store import open_store, parquet_bytes
from smepulse.errors import ConfigError
from smepulse.settings import Settings
from smepulse.synth import tables as gen_tables
from smepulse.synth.anomaly import plant
from smepulse.synth.ap import make_purchases
from smepulse.synth.bank import make_feed
from smepulse.synth.master import make_master
from smepulse.synth.sales import make_sales
from smepulse.synth.util import day_number

log = logging.getLogger(__name__)

#: AR invoices per year of history at scale 1 (the default two years give about 30,000).
INVOICES_PER_YEAR = 15_000
#: Days between consecutive ingest dates (weekly accounting exports).
INGEST_INTERVAL_DAYS = 7
#: Rows per Parquet file; larger ingests are written as several parts.
ROWS_PER_PART = 500_000
LABELS_FILE = "bank_transaction_anomalies.parquet"
#: The synthetic businesses: ``distributor`` (this module) and ``highlands``, an
#: agricultural-inputs trader written independently of the models (``synth.highlands``).
BUSINESSES = ("distributor", "highlands")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: history up to ``end_date``, ``years`` long, ``scale`` x the default
    volume, spread over ``ingest_dates`` weekly exports (the last one on ``end_date``)."""

    end_date: dt.date
    seed: int = 42
    scale: float = 1.0
    years: float = 2.0
    ingest_dates: int = 3
    business: str = "distributor"

    def __post_init__(self) -> None:
        if self.business not in BUSINESSES:
            raise ConfigError(
                f"unknown synthetic business {self.business!r}; choose one of {', '.join(BUSINESSES)}"
            )
        if not self.scale > 0:
            raise ConfigError(f"generator scale must be > 0, got {self.scale}")
        if not 0.05 <= self.years <= 20:
            raise ConfigError(f"generator years must be between 0.05 and 20, got {self.years}")
        if not 1 <= self.ingest_dates <= 60:
            raise ConfigError(f"generator ingest_dates must be 1..60, got {self.ingest_dates}")

    @property
    def start_date(self) -> dt.date:
        return self.end_date - dt.timedelta(days=max(round(self.years * 365.25) - 1, 1))

    def ingest_days(self) -> list[dt.date]:
        """The export dates, oldest first; the last is ``end_date``."""
        history = (self.end_date - self.start_date).days
        step = max(1, min(INGEST_INTERVAL_DAYS, history // (2 * self.ingest_dates)))
        return [
            self.end_date - dt.timedelta(days=step * i) for i in reversed(range(self.ingest_dates))
        ]


@dataclass(frozen=True)
class Dataset:
    """A generated data set in memory: per table, one Arrow table per ingest date."""

    config: GeneratorConfig
    ingest_dates: tuple[dt.date, ...]
    tables: dict[str, list[pa.Table]]
    labels: pa.Table


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote."""

    bronze_root: str
    labels_path: Path
    ingest_dates: tuple[dt.date, ...]
    rows: dict[str, int]  # rows written per table, all ingest dates together
    keys: dict[str, int]  # distinct keys per table
    files: dict[str, list[str]]
    anomalies: int


def build_dataset(config: GeneratorConfig, step: Callable[[str], None] | None = None) -> Dataset:
    """Generate everything in memory (no I/O). ``step`` is called after each phase."""
    report = step or (lambda _: None)
    seeds = np.random.SeedSequence(config.seed).spawn(5)
    rng_master, rng_sales, rng_ap, rng_bank, rng_anomaly = (np.random.default_rng(s) for s in seeds)
    start, end = day_number(config.start_date), day_number(config.end_date)
    ingest = config.ingest_days()
    days = np.array([day_number(d) for d in ingest], dtype=np.int64)
    n_invoices = max(50, round(INVOICES_PER_YEAR * config.scale * (end - start + 1) / 365.25))

    master = make_master(rng_master, config.scale, start, end)
    report("master data")
    sales = make_sales(rng_sales, master, n_invoices)
    report("sales")
    purchases = make_purchases(rng_ap, master, sales, max(20, round(n_invoices * 0.12)))
    report("purchases")
    feed, counterparties = make_feed(rng_bank, master, sales, purchases, config.scale)
    rows, descriptions, labels = plant(rng_anomaly, feed, counterparties)
    report("bank feed")
    tables = {
        "customers": gen_tables.customers(master, days),
        "suppliers": gen_tables.suppliers(master, days),
        "products": gen_tables.products(master, days),
        "bank_accounts": gen_tables.bank_accounts(master, days),
        **gen_tables.ar_tables(sales, days),
        **gen_tables.ap_tables(purchases, days),
        "bank_transactions": gen_tables.bank_transactions(
            rows, descriptions, counterparties.names, days
        ),
    }
    report("tables")
    return Dataset(
        config, tuple(ingest), {t: tables[t] for t in TABLE_NAMES}, gen_tables.labels_table(labels)
    )


def _builder(business: str) -> Callable[[GeneratorConfig, Callable[[str], None]], Dataset]:
    if business == "highlands":
        from smepulse.synth.highlands.build import build_dataset as build_highlands

        return build_highlands
    return build_dataset


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    with progress:
        yield progress


def _write_labels(path: Path, labels: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(parquet_bytes(labels))
    tmp.replace(path)


def generate(
    settings: Settings, config: GeneratorConfig, show_progress: bool = True
) -> GenerationSummary:
    """Generate the data set and write it to bronze (replacing the contract tables there) and
    the labels to ``settings.labels_dir``. Prints a summary; returns what was written."""
    store = open_store(settings)
    with _progress(show_progress) as progress:
        build = progress.add_task("generating", total=5)
        dataset = _builder(config.business)(
            config, lambda name: progress.update(build, advance=1, description=f"generated {name}")
        )
        rows: dict[str, int] = {}
        keys: dict[str, int] = {}
        files: dict[str, list[str]] = {}
        for table, parts in dataset.tables.items():
            removed = store.delete_table(table)
            if removed:
                log.info("replaced %d existing file(s) of bronze table %s", removed, table)
            n_files = sum(-(-p.num_rows // ROWS_PER_PART) for p in parts)
            task = progress.add_task(f"writing {table}", total=n_files)
            files[table] = []
            for ingest_date, data in zip(dataset.ingest_dates, parts, strict=True):
                for i, offset in enumerate(range(0, data.num_rows, ROWS_PER_PART)):
                    chunk = data.slice(offset, ROWS_PER_PART)
                    files[table].append(
                        store.write_table(table, ingest_date, chunk, part=f"part-{i:05d}")
                    )
                    progress.advance(task)
            rows[table] = sum(p.num_rows for p in parts)
            key = parts[0].schema.names[0]
            distinct = pc.count_distinct(pa.chunked_array([p.column(key) for p in parts]))
            keys[table] = rows[table] if table == "ar_invoice_lines" else int(distinct.as_py())
        labels_path = settings.labels_dir / LABELS_FILE
        _write_labels(labels_path, dataset.labels)
    summary = GenerationSummary(
        store.root, labels_path, dataset.ingest_dates, rows, keys, files, dataset.labels.num_rows
    )
    _print_summary(summary, config)
    return summary


def _print_summary(s: GenerationSummary, config: GeneratorConfig) -> None:
    table = Table(
        title=f"{config.business}, bronze contract {CONTRACT_VERSION}: {config.start_date} .. {config.end_date}, seed {config.seed}, scale {config.scale:g}"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("distinct keys", justify="right")
    table.add_column("files", justify="right")
    for name in TABLE_NAMES:
        table.add_row(name, f"{s.rows[name]:,}", f"{s.keys[name]:,}", str(len(s.files[name])))
    console = Console()
    console.print(table)
    console.print(
        f"bronze:  {s.bronze_root}  (ingest dates {', '.join(d.isoformat() for d in s.ingest_dates)})"
    )
    console.print(f"labels:  {s.labels_path}  ({s.anomalies:,} planted bank-transaction anomalies)")
