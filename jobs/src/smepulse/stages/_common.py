"""Small helpers shared by the runner-side stages (verify, notify, metabase, cache, report).

- :func:`mask_url`: a URL fit for logs (password replaced), so a table or error message can
  say *which* endpoint failed without leaking its credentials.
- :func:`with_retries`: call an HTTP/network operation, retrying transient failures
  (connection errors, timeouts, HTTP 5xx and 429) with exponential backoff; anything else
  (a 4xx: wrong credentials, unknown id) fails at once because retrying cannot fix it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from smepulse import retry

log = logging.getLogger(__name__)
T = TypeVar("T")


def mask_url(url: str) -> str:
    """``url`` with any password (and API-key-like query) replaced by ``****``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    netloc = parts.netloc
    secret_path = parts.scheme in {"http", "https"} and any(
        h in netloc for h in ("hooks.", "webhook")
    )
    if "@" not in netloc and not parts.query and not secret_path:
        return url  # nothing secret in it (and sqlite:///abs/path keeps its three slashes)
    if "@" in netloc:
        creds, _, host = netloc.rpartition("@")
        user = creds.split(":", 1)[0]
        netloc = f"{user}:****@{host}" if user else f"****@{host}"
    query = "****" if parts.query else ""
    # Slack-style webhook URLs carry their secret in the path: keep only the host.
    path = ("/****" if parts.path else "") if secret_path else parts.path
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the network or the server's fault, not ours."""
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code >= 500 or code == 429
    return isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError)


def with_retries(
    what: str,
    fn: Callable[[], T],
    retries: int,
    backoff_seconds: float,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """``fn()``, retried up to ``retries`` times on transient errors (delay doubles each time).

    The policy is :func:`smepulse.retry.call`'s. The last error is re-raised unchanged so the
    caller can turn it into a StageError that names the resource.
    """

    def note(exc: BaseException, attempt: int, total: int, delay: float) -> None:
        log.warning("%s: %s; retry %d/%d in %.1fs", what, describe(exc), attempt, total, delay)

    return retry.call(
        fn,
        retries=retries,
        backoff_seconds=backoff_seconds,
        transient=transient,
        on_retry=note,
        sleep=time.sleep,
    )


def describe(exc: BaseException) -> str:
    """One line for an HTTP/network error (status and a short body, or the error type)."""
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text.strip().replace("\n", " ")[:200]
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}" + (
            f": {body}" if body else ""
        )
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
