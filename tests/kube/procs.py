"""Child processes that never outlive the test process.

Every child runs in its own process group (so a stop kills its children too) and, on Linux,
asks the kernel for ``SIGTERM`` when its parent dies (``PR_SET_PDEATHSIG``): a test process
killed with ``SIGKILL`` still takes etcd, the API server and running pods down with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    prctl: Callable[[int, int], int] = libc.prctl
    return prctl


# Resolved once, before any fork: the pre-exec hook must not import or allocate much.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    *,
    log: IO[bytes] | int | None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group, stdout and stderr both to ``log``.

    The parent-death signal is bound to the *thread* that calls this; call it from a thread
    that lives at least as long as the child (the main thread, or the thread that waits).
    """
    return subprocess.Popen(  # argv list, never a shell
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # only a prctl() call, resolved pre-fork
    )


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int | None:
    """SIGTERM the child's whole process group, then SIGKILL after ``grace`` seconds.

    Returns the child's exit status (``None`` only if it could not be reaped).
    """
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
    # Grandchildren left in the group (e.g. a shell's background job) go too.
    _signal_group(proc, signal.SIGKILL)
    return proc.poll()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        data = path.read_bytes()[-64_000:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
