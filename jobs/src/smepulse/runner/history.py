"""Run history of the local runner: one JSON document per run, beside the run's stage logs.

Layout: ``<runs_dir>/<run-id>/run.json`` plus ``<runs_dir>/<run-id>/<stage>[.<attempt>].log``.
Run ids are ``<pipeline>-<YYYYMMDD>`` for the first run of a logical date, then ``-2``, ``-3``…
The id is claimed by creating the run's folder (``mkdir`` is atomic), so two runners started
at the same moment never share a record. The record is rewritten (atomically, via a temporary
file and ``os.replace``) after every state change and at least every few seconds (the
heartbeat), so a crashed runner leaves a readable record that says ``Running``; readers turn it
into ``Interrupted`` when the runner that wrote it is gone (:func:`runner_gone`), and
``smepulse run … --resume`` continues it from its first unfinished stage.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from pathlib import Path

from pydantic import BaseModel, Field

RUN_FILE = "run.json"
# A runner saves its record at least every few seconds; silence for this long means it is dead
# (another machine's runner sharing the folder, where its pid cannot be checked).
STALE_AFTER_SECONDS = 120.0


class StageRecord(BaseModel):
    """One stage of a run."""

    name: str
    state: str = "Pending"  # a smepulse.planner.StageState value
    attempts: int = 0
    is_finally: bool = False
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    pid: int | None = None  # of the running attempt (its process group), for --resume
    message: str | None = None
    logs: list[str] = Field(default_factory=list)


class RunRecord(BaseModel):
    """One run of one pipeline for one logical date."""

    run_id: str
    pipeline: str
    logical_date: dt.date
    # Running, then the outcome: Succeeded/Failed/TimedOut/Cancelled; "Interrupted" is never
    # written, only shown for a Running record whose runner is gone.
    status: str = "Running"
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    duration_seconds: float | None = None
    from_stage: str | None = None
    only: list[str] | None = None
    params: dict[str, str] = Field(default_factory=dict)
    triggered_by: str | None = None
    triggered: list[str] = Field(default_factory=list)
    failed_stage: str | None = None
    failure_message: str | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    runner_pid: int | None = None
    runner_host: str | None = None
    heartbeat_at: dt.datetime | None = None
    resumed_at: list[dt.datetime] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(f"run {self.run_id} has no stage {name!r}")


def run_id_base(pipeline: str, logical_date: dt.date) -> str:
    return f"{pipeline}-{logical_date:%Y%m%d}"


def claim_run_dir(runs_dir: Path, pipeline: str, logical_date: dt.date) -> tuple[str, Path]:
    """Create and return a fresh run folder: ``<pipeline>-<YYYYMMDD>`` or the next ``-<n>``."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = run_id_base(pipeline, logical_date)
    n = 1
    while True:
        run_id = base if n == 1 else f"{base}-{n}"
        path = runs_dir / run_id
        try:
            path.mkdir()
        except FileExistsError:
            n += 1
            continue
        return run_id, path


def save(runs_dir: Path, record: RunRecord) -> Path:
    """Write ``record`` atomically to ``<runs_dir>/<run-id>/run.json``."""
    folder = runs_dir / record.run_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / RUN_FILE
    tmp = folder / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, target)
    return target


def load(path: Path) -> RunRecord | None:
    """The record at ``path``; None (not a crash) when it is unreadable."""
    try:
        return RunRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def runner_gone(record: RunRecord, now: dt.datetime | None = None) -> bool:
    """True when ``record`` says Running but the runner that wrote it is dead.

    On the same host the runner's pid is checked (a pid that no longer exists, or exists as
    a zombie, is dead); elsewhere, or for records without a pid, a heartbeat older than
    :data:`STALE_AFTER_SECONDS` means dead.
    """
    if record.status != "Running":
        return False
    if record.runner_pid is not None and record.runner_host == socket.gethostname():
        return not _pid_alive(record.runner_pid)
    beat = record.heartbeat_at or record.started_at
    now = now or dt.datetime.now(dt.UTC)
    return (now - beat).total_seconds() > STALE_AFTER_SECONDS


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a killed child not yet reaped by its parent is a zombie: dead for us
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stop_leftovers(record: RunRecord) -> list[int]:
    """Kill the process groups of attempts a dead runner left running; returns their pids.

    A pid is only trusted when the process still carries this run's ``SMEPULSE_RUN_ID`` in
    its environment, so a recycled pid of an unrelated process is never touched.
    """
    import signal

    marker = f"SMEPULSE_RUN_ID={record.run_id}".encode()
    killed = []
    for st in record.stages:
        if st.pid is None or st.state != "Running":
            continue
        try:
            environ = Path(f"/proc/{st.pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            try:
                os.killpg(st.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            killed.append(st.pid)
    return killed


def with_liveness(record: RunRecord) -> RunRecord:
    """``record`` as people should see it: status Interrupted if its runner is gone."""
    if runner_gone(record):
        return record.model_copy(update={"status": "Interrupted"})
    return record


def history(runs_dir: Path) -> list[RunRecord]:
    """Every readable run record, newest first (dead runners' records say Interrupted)."""
    if not runs_dir.is_dir():
        return []
    records = [
        with_liveness(r) for p in runs_dir.glob(f"*/{RUN_FILE}") if (r := load(p)) is not None
    ]
    return sorted(records, key=lambda r: (r.started_at, r.run_id), reverse=True)


_SUFFIX = re.compile(r"^(?P<base>.+-\d{8})(?:-(?P<n>\d+))?$")


def runs_for(runs_dir: Path, pipeline: str, logical_date: dt.date) -> list[RunRecord]:
    """The runs of ``pipeline`` for ``logical_date``, oldest first."""
    base = run_id_base(pipeline, logical_date)
    found = []
    for record in history(runs_dir):
        match = _SUFFIX.match(record.run_id)
        if record.pipeline == pipeline and match and match.group("base") == base:
            found.append(record)
    return sorted(found, key=lambda r: (r.started_at, r.run_id))


def succeeded_before(runs_dir: Path, pipeline: str, logical_date: dt.date) -> RunRecord | None:
    """A complete (not ``--only``/``--from-stage``) successful run of that date, if any."""
    for record in reversed(runs_for(runs_dir, pipeline, logical_date)):
        if record.status == "Succeeded" and not record.only and not record.from_stage:
            return record
    return None


def last_success(runs_dir: Path) -> dict[str, dt.date]:
    """Per stage name, the logical date of its newest successful attempt in any run here:
    the local runner's record of what each stage last published on this warehouse."""
    newest: dict[str, tuple[dt.datetime, dt.date]] = {}
    for record in history(runs_dir):
        for stage in record.stages:
            if stage.state != "Succeeded" or stage.finished_at is None:
                continue
            known = newest.get(stage.name)
            if known is None or stage.finished_at > known[0]:
                newest[stage.name] = (stage.finished_at, record.logical_date)
    return {name: day for name, (_, day) in newest.items()}
