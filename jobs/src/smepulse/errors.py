"""Expected failures. The CLI turns these into one clear line and an exit code, never a
traceback: 1 for a failed stage, 2 for bad configuration or arguments."""

from __future__ import annotations

from smepulse.settings import ConfigError

__all__ = ["ConfigError", "StageError", "StageSkipped"]


class StageError(Exception):
    """A stage failed for a reason the user can act on (the message says what and where)."""


class StageSkipped(Exception):  # a signal, not an error
    """A stage had nothing to do (e.g. Metabase not configured): logged, exit code 0."""
