"""What the person running ``smepulse run`` sees: a live table on a terminal, plain lines
otherwise (CI logs, pipes), and a summary table at the end. Presentation only: the runner
tells the view about changes; the view never decides anything."""

from __future__ import annotations

import datetime as dt
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from smepulse.runner.history import RunRecord

_STYLE = {
    "Pending": "dim",
    "Running": "bold cyan",
    "Retrying": "yellow",
    "Succeeded": "green",
    "Skipped": "red",
    "Failed": "bold red",
    "Cancelled": "magenta",
}
_OUTCOME_STYLE = {"Succeeded": "bold green", "Running": "cyan", "Interrupted": "magenta"}


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s"


def _elapsed(stage_started: dt.datetime | None, duration: float | None) -> float | None:
    if duration is not None:
        return duration
    if stage_started is None:
        return None
    return (dt.datetime.now(dt.UTC) - stage_started).total_seconds()


def stage_table(record: RunRecord, title: str | None = None) -> Table:
    """The run's stages: state, attempt, elapsed time and the last message."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("stage")
    table.add_column("state")
    table.add_column("attempt", justify="right")
    table.add_column("elapsed", justify="right")
    table.add_column("detail", overflow="fold", max_width=70)
    for st in record.stages:
        name = f"{st.name} (finally)" if st.is_finally else st.name
        state = f"[{_STYLE.get(st.state, '')}]{st.state}[/]"
        attempts = str(st.attempts) if st.attempts else ""
        elapsed = _fmt_seconds(_elapsed(st.started_at, st.duration_seconds))
        table.add_row(name, state, attempts, elapsed, st.message or "")
    return table


class RunView:
    """Live table when ``console`` is a terminal, else one line per state change."""

    def __init__(self, console: Console, record: RunRecord) -> None:
        self.console = console
        self.record = record
        self.live: Live | None = None
        self._last_refresh = 0.0

    def __enter__(self) -> RunView:
        header = f"run [bold]{self.record.run_id}[/] ({self.record.pipeline}, logical date {self.record.logical_date})"
        self.console.print(header)
        if self.console.is_terminal:
            self.live = Live(
                stage_table(self.record), console=self.console, refresh_per_second=4, transient=True
            )
            self.live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def changed(self, stage: str, state: str, attempt: int, detail: str | None = None) -> None:
        """A stage changed state: a line (plain mode) or a redraw (live mode)."""
        if self.live is not None:
            self.live.update(stage_table(self.record))
            return
        stamp = time.strftime("%H:%M:%S")
        extra = f" (attempt {attempt})" if attempt > 1 or state == "Running" else ""
        note = f": {detail}" if detail else ""
        self.console.print(
            f"{stamp} {self.record.run_id} {stage} {state}{extra}{note}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def tick(self) -> None:
        """Periodic redraw so elapsed times move (live mode only, at most 4 per second)."""
        now = time.monotonic()
        if self.live is not None and now - self._last_refresh >= 0.25:
            self._last_refresh = now
            self.live.update(stage_table(self.record))


def print_summary(console: Console, record: RunRecord, run_dir: str) -> None:
    """The final table and one line saying how it went and where the logs are."""
    console.print(stage_table(record, title=f"{record.run_id}: {record.status}"))
    style = _OUTCOME_STYLE.get(record.status, "bold red")
    line = f"[{style}]{record.status}[/] {record.run_id} in {_fmt_seconds(record.duration_seconds)}"
    if record.failed_stage:
        line += f"; failed stage: {record.failed_stage}"
        if record.failure_message:
            line += f" ({record.failure_message})"
    console.print(line, soft_wrap=True)
    console.print(f"logs: {run_dir}", markup=False, highlight=False, soft_wrap=True)


def history_table(records: list[RunRecord]) -> Table:
    """``smepulse runs``: one row per run, newest first."""
    table = Table(title="SME Pulse runs (newest first)", title_justify="left")
    for col in (
        "run",
        "pipeline",
        "logical date",
        "status",
        "started",
        "duration",
        "stages",
        "failed stage",
    ):
        table.add_column(col, justify="right" if col in {"duration", "stages"} else "left")
    for r in records:
        done = sum(1 for s in r.stages if s.state == "Succeeded")
        ran = len(r.stages)
        style = _OUTCOME_STYLE.get(r.status, "bold red")
        table.add_row(
            r.run_id,
            r.pipeline,
            r.logical_date.isoformat(),
            f"[{style}]{r.status}[/]",
            r.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            _fmt_seconds(r.duration_seconds),
            f"{done}/{ran}",
            r.failed_stage or "",
        )
    return table
