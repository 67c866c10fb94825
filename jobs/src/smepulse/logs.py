"""Logging: readable text on a terminal, one JSON object per line in containers."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pythonjsonlogger import json as jsonlogger

from smepulse.settings import Settings

_PLAIN = (str, int, float, bool, type(None), list, tuple, dict)


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per record: time, level, logger, message, and any ``extra`` fields.

    python-json-logger does the work; this only fixes the field names, a UTC time with
    milliseconds, the lower-case level, and keeps ``extra`` values that are plain data
    (libraries such as kopf attach whole objects to their records).
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            json_default=str,
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        for key in [k for k in log_data if k not in _OWN]:
            if key.startswith("_") or not isinstance(log_data[key], _PLAIN):
                del log_data[key]


_OWN = {"time", "level", "logger", "message", "exception"}


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the ``sys.stderr`` object of configuration time breaks when that object
    is swapped and closed later (a CLI invoked in-process by a test runner, then kopf's runner
    in the same process): every later record becomes a "Logging error" traceback.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # set by StreamHandler.__init__: always sys.stderr
        pass


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once per process, from settings."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = _CurrentStderrHandler()
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in (
        "urllib3",
        "botocore",
        "boto3",
        "s3transfer",
        "cmdstanpy",
        "prophet",
        "alembic",
        "httpx",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
