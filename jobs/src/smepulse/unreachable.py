"""One line for "a service could not be reached", whichever client hit it.

Stages talk to S3 (boto3), Trino (trino client), MLflow, Metabase and the webhook (requests),
Redis and PostgreSQL. When an endpoint is wrong or down, each client raises its own exception
from deep inside, and a stage Pod's log would end in a 40-line traceback. :func:`describe`
recognises those errors (by class name and module, so nothing here imports the clients) and
names the service, its address and the reason; the CLI prints that as the stage's one error
line. Anything it does not recognise is left alone, so real bugs keep their traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

#: Exception classes (module prefix, class name) that mean "could not connect".
_CONNECT_ERRORS = {
    ("botocore", "EndpointConnectionError"),
    ("botocore", "ConnectTimeoutError"),
    ("botocore", "ReadTimeoutError"),
    ("redis", "ConnectionError"),
    ("redis", "TimeoutError"),
    ("requests", "ConnectionError"),
    ("requests", "ConnectTimeout"),
    ("trino", "TrinoConnectionError"),
    ("urllib3", "NewConnectionError"),
    ("urllib3", "MaxRetryError"),
    ("psycopg2", "OperationalError"),
    ("builtins", "ConnectionRefusedError"),
    ("socket", "gaierror"),
}

#: Services told apart by the URL path their clients call.
_PATHS = (
    ("/v1/statement", "Trino"),
    ("/api/2.0/mlflow", "MLflow"),
    ("/ajax-api/2.0/mlflow", "MLflow"),
    ("/api/card", "Metabase"),
    ("/api/dashboard", "Metabase"),
    ("/api/session", "Metabase"),
)

_URL = re.compile(r"https?://[^\s\"'<>)]+")
_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)\).*?url: (\S+)")
_CONNECTING_TO = re.compile(r"connecting to ([\w.-]+:\d+)")  # redis
_SERVER_AT = re.compile(r'server at "([^"]+)"(?: \([^)]*\))?, port (\d+)')  # libpq
_REASON = re.compile(
    r"(Connection refused|Name or service not known|Temporary failure in name resolution|"
    r"timed out|No route to host|Network is unreachable|Connection reset by peer|"
    r"nodename nor servname provided)",
    re.IGNORECASE,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connect_error(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if (root, cls.__name__) in _CONNECT_ERRORS:
            if root == "psycopg2":
                return "connect" in str(exc).lower() or bool(_REASON.search(str(exc)))
            return True
    return False


def _service(module: str, url: str) -> str:
    path = urlsplit(url).path if url else ""
    for prefix, name in _PATHS:
        if path.startswith(prefix):
            return name
    return {
        "botocore": "the object store (S3)",
        "redis": "Redis",
        "psycopg2": "PostgreSQL",
        "trino": "Trino",
    }.get(module, "a service")


def describe(exc: BaseException) -> str | None:
    """``cannot reach <service> at <address>: <reason>``, or None for any other error."""
    errors = [e for e in _chain(exc) if _is_connect_error(e)]
    if not errors:
        return None
    first = errors[0]
    module = type(first).__module__.split(".", 1)[0]
    text = " ".join(str(e) for e in errors)
    address = ""
    match = _HOST_PORT.search(text)
    if match:
        host, port, path = match.groups()
        address = f"{host}:{port}{path if path.startswith('/') else ''}"
        url = f"http://{address}"
    else:
        found = _URL.search(text)
        url = found.group(0).rstrip(".,;") if found else ""
        address = url.split("?", 1)[0]
    if not address:
        connecting, server = _CONNECTING_TO.search(text), _SERVER_AT.search(text)
        if connecting:
            address = connecting.group(1)
        elif server:
            address = f"{server.group(1)}:{server.group(2)}"
    reason_match = _REASON.search(text)
    reason = reason_match.group(1) if reason_match else type(first).__name__
    where = f" at {address}" if address else ""
    return f"cannot reach {_service(module, url)}{where}: {reason}"
