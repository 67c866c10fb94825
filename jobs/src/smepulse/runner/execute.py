"""One attempt of one stage as a subprocess: start, poll, time out, read what went wrong.

Each attempt runs in its own session (process group), so a timeout or Ctrl-C kills the stage
and everything it started (dbt's threads, Prophet's cmdstan), not just the Python parent.
stdout and stderr go, interleaved, to the attempt's log file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol


class _Closable(Protocol):
    def close(self) -> None: ...


# Builds the command of a stage: (stage name, logical date) -> argv. Injected in unit tests.
StageCommand = Callable[[str, dt.date], list[str]]

KILL_GRACE_SECONDS = 5.0
_SKIP_PREFIX = "skipped: "
_ERROR_PREFIX = "error: "


def default_command(name: str, logical_date: dt.date) -> list[str]:
    """The real entrypoint, with the runner's own interpreter (works inside a virtualenv)."""
    return [
        sys.executable, "-m", "smepulse.cli", "stage", name,
        "--logical-date", logical_date.isoformat(),
    ]  # fmt: skip


def log_name(stage: str, attempt: int) -> str:
    """``<stage>.log`` for the first attempt, ``<stage>.<n>.log`` for retries."""
    return f"{stage}.log" if attempt == 1 else f"{stage}.{attempt}.log"


@dataclass
class Attempt:
    """A running attempt."""

    stage: str
    number: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] | _Closable
    started: float  # monotonic
    deadline: float  # monotonic
    timed_out: bool = field(default=False)

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self, grace: float = KILL_GRACE_SECONDS) -> None:
        """Stop the attempt: its process group (:func:`kill_group`)."""
        kill_group(self.proc, grace)

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.log_file.close()


def start_attempt(
    stage: str,
    number: int,
    argv: list[str],
    env: Mapping[str, str],
    log_path: Path,
    timeout_seconds: float,
    cwd: Path | None = None,
) -> Attempt:
    """Start ``argv`` in a new process group, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    header = f"# {dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} attempt {number}: {' '.join(argv)}\n"
    log_file.write(header.encode())
    log_file.flush()
    try:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        log_file.write(f"error: could not start the stage: {exc}\n".encode())
        log_file.close()
        raise
    now = time.monotonic()
    return Attempt(stage, number, proc, log_path, log_file, now, now + timeout_seconds)


def kill_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the attempt's process group, then SIGKILL whatever is left after ``grace``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(path: Path, max_bytes: int = 16_384) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def failure_message(path: Path, limit: int = 500) -> str | None:
    """The stage's own ``error: …`` line (the CLI prints one), else its last log line."""
    lines = [ln for ln in _tail(path) if not ln.startswith("# ")]
    if not lines:
        return None
    errors = [ln for ln in lines if ln.startswith(_ERROR_PREFIX)]
    text = errors[-1][len(_ERROR_PREFIX) :] if errors else lines[-1]
    return text[:limit]


def skip_reason(path: Path) -> str | None:
    """The reason a stage gave for skipping (``skipped: …`` on its stdout), if it did."""
    for line in reversed(_tail(path)):
        if line.startswith(_SKIP_PREFIX):
            return line[len(_SKIP_PREFIX) :]
    return None
