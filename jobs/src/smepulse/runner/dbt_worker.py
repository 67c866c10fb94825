"""A warm dbt worker: one process the local runner keeps for its dbt stages.

A dbt stage started as its own process spends ~2.5 s before dbt does any work: a new
Python, ``import dbt`` (~1.1 s), loading the manifest, opening the warehouse. daily-etl has
six dbt stages in a row. The runner therefore starts one worker process per run
(:func:`main`, its own process group) as soon as the run begins,
which imports the CLI and dbt while the first stages run, and hands it the dbt stages one at
a time. Each stage is still its own attempt with its own record, log file, exit code, retries
and timeout:

- The runner sends one JSON line per stage on the worker's stdin: the stage's argv (the same
  ``smepulse stage <name> --logical-date D`` a subprocess would run), its environment and its
  log file. The worker replaces ``os.environ`` with that environment, points its file
  descriptors 1 and 2 at the log file, runs the very same CLI command in-process, and answers
  ``{"exit": <code>}`` on its own control pipe; the code is the one the CLI process would have
  exited with (0, 1 for a failed stage, 2 for bad configuration, 1 and a traceback for an
  unexpected exception).
- A timeout or a cancel kills the worker's whole process group, exactly as it kills a stage
  process; the next dbt stage starts a fresh worker. A worker that dies on its own (a crash)
  fails only the stage it was running, with the worker's exit status.
- Within one worker, dbt's parsed manifest is reused from stage to stage
  (:func:`smepulse.dbt_runner.enable_manifest_reuse`) for the same target, project and
  environment.
- One stage at a time: when the worker is busy (Trino stages may run in parallel) the next
  dbt stage runs as its own process, as without the worker.

``SMEPULSE_RUNNER_DBT_WORKER=false`` turns it off (every stage its own process). The
Kubernetes path is unchanged: there each stage is a Pod running ``smepulse stage``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smepulse.runner.execute import KILL_GRACE_SECONDS, Attempt, kill_group


class DbtWorker:
    """The runner's handle on one worker process."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from smepulse.runner.dbt_worker import main; main()"],
            env={**env, "PYTHONUNBUFFERED": "1"},  # stage output reaches its log as it happens
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        self.busy = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        """Hand one stage to the worker (it queues behind the worker's start-up)."""
        request = {"argv": argv, "env": dict(env), "log": str(log_path)}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        self.busy = True

    def result(self) -> int | None:
        """The running stage's exit code once the worker answered; the worker's own exit
        status if it died first; None while the stage runs."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, 65536):
                self._buffer += chunk
        if b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self.busy = False
            return int(json.loads(line)["exit"])
        code = self.proc.poll()
        if code is not None:
            self.busy = False
            return code if code != 0 else 1  # gone without answering: never a success
        return None

    def kill(self, grace: float) -> None:
        kill_group(self.proc, grace)
        self.busy = False
        self._close_pipes()

    def close(self, grace: float = 5.0) -> None:
        """End of the run: let an idle worker exit (stdin closed); kill it if it will not."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, 1.0)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        with contextlib.suppress(OSError):
            self._log.close()


@dataclass
class WorkerAttempt(Attempt):
    """An attempt run by a :class:`DbtWorker`: polled through the worker's answer; killing
    it kills the worker (the next dbt stage starts a fresh one)."""

    worker: DbtWorker | None = field(default=None)
    code: int | None = field(default=None)

    def poll(self) -> int | None:
        if self.code is None and self.worker is not None:
            self.code = self.worker.result()
            if self.code is not None and not self.worker.alive:
                self._note(
                    f"error: the dbt worker (pid {self.proc.pid}) exited with status "
                    f"{self.proc.returncode} before the stage finished "
                    f"(its own output: {self.worker.log_path})\n"
                )
        return self.code

    def kill(self, grace: float = KILL_GRACE_SECONDS) -> None:
        if self.worker is not None and self.code is None:
            self.worker.kill(grace)
            self.code = self.proc.returncode

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a") as fh:
            fh.write(text)


def start_in_worker(
    worker: DbtWorker,
    stage: str,
    number: int,
    argv: list[str],
    env: Mapping[str, str],
    log_path: Path,
    timeout_seconds: float,
) -> WorkerAttempt:
    """Hand ``argv`` (a ``smepulse stage`` command) to ``worker``; output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    header = (
        f"# {dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} attempt {number} "
        f"(warm dbt worker, pid {worker.proc.pid}): {' '.join(argv)}\n"
    )
    log_file.write(header.encode())
    log_file.close()
    worker.submit(argv, env, log_path)
    now = time.monotonic()
    return WorkerAttempt(
        stage, number, worker.proc, log_path, _Closed(), now, now + timeout_seconds,
        worker=worker,
    )  # fmt: skip


class _Closed:
    """The attempt's log handle: the worker writes the log itself."""

    def close(self) -> None:
        pass


# -- the worker process ---------------------------------------------------------------------


def _cli_args(argv: list[str]) -> list[str]:
    """``[python, -m, smepulse.cli, stage, …]`` -> ``[stage, …]``."""
    if "smepulse.cli" in argv:
        return argv[argv.index("smepulse.cli") + 1 :]
    return argv[1:]


def _run_one(args: list[str]) -> int:
    """The CLI command ``args`` in this process: its exit code, as a process would give it."""
    from smepulse.cli import app

    try:
        app(args=args, prog_name="smepulse", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # as an uncaught exception in a process: traceback, exit 1
        traceback.print_exc()
        return 1
    return 0


def serve(control: IO[bytes], requests: IO[bytes]) -> None:
    """Answer stage requests from ``requests`` on ``control`` until ``requests`` closes."""
    import smepulse.cli  # noqa: F401  (warm: the CLI, settings, catalog)
    from smepulse import dbt_runner

    dbt_runner.enable_manifest_reuse()
    import dbt.cli.main  # noqa: F401  (warm: the ~1 s import every dbt stage would pay)

    idle_out, idle_err = os.dup(1), os.dup(2)
    for line in requests:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        with open(request["log"], "ab") as log:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                code = _run_one(_cli_args(request["argv"]))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(idle_out, 1)
                os.dup2(idle_err, 2)
        control.write(json.dumps({"exit": code}).encode() + b"\n")
        control.flush()


def main() -> None:
    # fd 1 is the control pipe to the runner: keep it private, and send whatever the worker
    # prints between stages to its stderr (the worker's own log in the run folder).
    control = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(control, sys.stdin.buffer)


if __name__ == "__main__":
    main()
