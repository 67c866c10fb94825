"""Logging: readable text on a terminal, one JSON object per line in containers."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from smepulse.settings import Settings

_RESERVED = set(vars(logging.makeLogRecord({})))
_PLAIN = (str, int, float, bool, type(None), list, tuple, dict)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            # Only plain values: libraries (kopf) attach whole objects to their records.
            if key not in _RESERVED and not key.startswith("_") and isinstance(value, _PLAIN):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once per process, from settings."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = logging.StreamHandler(sys.stderr)
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
