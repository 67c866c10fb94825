"""``smepulse demo``: from a fresh machine to every output, offline, in one command.

Steps, for the logical date ``end_date`` (default yesterday):

1. generate the synthetic SME into bronze (skipped when bronze already holds data generated
   with the same configuration, as recorded in ``<home>/demo-data.json``);
2. ``external-sync`` (World Bank indicators from the bundled snapshot when offline, provinces);
3. ``daily-etl`` with its trigger off, so that ml-predict runs once, after ml-training, with
   the models it trained rather than the baselines that would serve before them;
4. ``ml-training`` (UC09 and UC10, registered in MLflow, promoted when they validate);
5. ``ml-predict`` (the 30-day forecast, the week's anomalies, then the day's report);

then a table of where every output is and how to look at it. Each pipeline run is an ordinary
local run (``smepulse runs`` lists them). The demo stops at the first pipeline that fails and
says where its logs are.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from smepulse.runner import run_pipeline
from smepulse.settings import Settings

MARKER = "demo-data.json"
SEED = 42


@dataclass(frozen=True)
class DataConfig:
    """What the demo generates (recorded beside bronze so a re-run can skip it)."""

    end_date: str
    scale: float
    seed: int = SEED
    years: float = 2.0
    ingest_dates: int = 3


def _bronze_has_data(settings: Settings) -> bool:
    if settings.bronze_is_s3:
        return False  # the demo is the embedded stack; with S3 it always regenerates
    root = Path(settings.bronze_root)
    return root.is_dir() and any(root.glob("*/ingest_date=*/*.parquet"))


def _generate(settings: Settings, config: DataConfig, console: Console) -> None:
    marker = settings.home / MARKER
    if _bronze_has_data(settings) and marker.exists():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous == asdict(config):
            console.print(
                f"bronze at {settings.bronze_root} already holds the data for end date {config.end_date}, "
                f"scale {config.scale:g}, seed {config.seed}: generation skipped "
                f"(delete {marker} to regenerate)",
                markup=False,
                soft_wrap=True,
            )
            return
    from smepulse.synth.generate import GeneratorConfig, generate

    generate(
        settings,
        GeneratorConfig(
            end_date=dt.date.fromisoformat(config.end_date),
            seed=config.seed,
            scale=config.scale,
            years=config.years,
            ingest_dates=config.ingest_dates,
        ),
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")


def _gold_counts(settings: Settings) -> list[tuple[str, int]]:
    from smepulse.stages.report_data import gold_tables
    from smepulse.warehouse import get_warehouse

    try:
        return gold_tables(get_warehouse(settings), settings.gold_schema)
    except Exception as exc:  # the summary must print even if the warehouse is unreadable
        return [(f"(unreadable: {exc})", 0)]


def print_outputs(settings: Settings, day: dt.date, console: Console) -> None:
    """Where every output is and the command to look at it (plain lines: copy-pasteable)."""
    warehouse = settings.warehouse_path.resolve()
    report = (settings.reports_dir / f"ml-predict-{day.isoformat()}.html").resolve()
    query = "select * from gold.ml_ar_priority_scores order by priority_rank limit 10"
    rows = [
        ("bronze (Parquet)", str(Path(settings.bronze_root).resolve())),
        ("warehouse (DuckDB)", str(warehouse)),
        (
            "  query it (duckdb CLI)",
            f'duckdb -readonly {warehouse} "select * from gold.ml_cashflow_forecast"',
        ),
        (
            "  or from Python",
            f"python -c \"import duckdb; print(duckdb.connect('{warehouse}', read_only=True).sql('{query}'))\"",
        ),
        ("HTML report", str(report)),
        ("Markdown summary", str(report.with_suffix(".md"))),
        ("MLflow UI", f"mlflow ui --backend-store-uri {settings.tracking_uri}"),
        (
            "run history",
            f"smepulse runs   (records and stage logs in {settings.runs_dir.resolve()})",
        ),
    ]
    console.print(Rule("[bold]where everything is"))
    for label, value in rows:
        console.print(f"{label + ':':<24} {value}", markup=False, soft_wrap=True)
    counts = Table(title=f"gold tables ({settings.gold_schema})", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, n in _gold_counts(settings):
        counts.add_row(name, f"{n:,}")
    console.print(counts)


def run_demo(settings: Settings, end_date: dt.date | None = None, scale: float = 1.0) -> bool:
    """Run the whole demo; True when every step succeeded."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)  # as the runner: logs and pipes are not cut
    day = end_date or dt.date.today() - dt.timedelta(days=1)
    config = DataConfig(end_date=day.isoformat(), scale=scale)
    started = time.monotonic()
    timings: list[tuple[str, float, bool]] = []

    def step(title: str, fn: Callable[[], bool]) -> bool:
        console.print(Rule(f"[bold]{title}"))
        t0 = time.monotonic()
        ok = fn()
        timings.append((title, time.monotonic() - t0, ok))
        if not ok:
            console.print(
                f"[bold red]demo stopped: {title} failed.[/] The summary above names the stage; "
                f"its log is under {settings.runs_dir.resolve()}/. Fix it and run `smepulse demo` again."
            )
        return ok

    def generate() -> bool:
        _generate(settings, config, console)
        return True

    console.print(
        f"SME Pulse demo: logical date {day}, scale {scale:g}, project folder {settings.home.resolve()}"
    )
    steps: list[tuple[str, Callable[[], bool]]] = [
        ("1/5 generate synthetic data", generate),
        ("2/5 external-sync", lambda: run_pipeline(settings, "external-sync", day)),
        ("3/5 daily-etl (trigger off: no models yet)", lambda: run_pipeline(settings, "daily-etl", day, follow_triggers=False)),
        ("4/5 ml-training", lambda: run_pipeline(settings, "ml-training", day)),
        ("5/5 ml-predict and the day's report", lambda: run_pipeline(settings, "ml-predict", day)),
    ]  # fmt: skip
    ok = all(step(title, fn) for title, fn in steps)  # all() stops at the first failure
    console.print(Rule("[bold]demo summary"))
    for title, seconds, step_ok in timings:
        console.print(f"  {'ok ' if step_ok else 'FAILED'} {title:<45} {seconds:6.1f}s")
    console.print(f"  total {time.monotonic() - started:.1f}s")
    print_outputs(settings, day, console)
    return ok
