"""Real local services for the stage tests (fixtures registered by conftest.py, importable by
the e2e tests): a redis-server, an HTTP server, an SMTP server.

- ``redis_url``: CI's Redis (``SMEPULSE_TEST_REDIS_URL``, database 13) or a throw-away
  ``redis-server`` on a free port, reached as an ACL user denied ``KEYS``.
- ``http_server``: a threaded ``http.server`` whose answers a test scripts per request
  (``server.respond = fn``); every request is recorded (method, path, headers, JSON body), so
  tests assert on the record in their own thread. An exception in ``respond`` (it runs in the
  server's thread, where the client would only see a dropped connection) fails the test.
- ``smtp_server``: aiosmtpd's SMTP server collecting the messages it receives.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.needs import import_or_fail, missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TEST_DB = 13  # a database of its own on a shared server (CI's), flushed by the tests
TEST_USER, TEST_PASSWORD = "smepulse-stage-test", "stage-test-pw"


def required(what: str) -> None:
    """Fail (CI: SMEPULSE_REQUIRE_SERVICES=1) or skip (a laptop) when a tool is missing."""
    missing(what)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis that CI started (SMEPULSE_TEST_REDIS_URL), else a redis-server of our own.

    Tests connect as an ACL user that may run every command except KEYS, so any use of KEYS
    fails the test instead of passing unnoticed.
    """
    import redis

    proc = None
    base = os.environ.get("SMEPULSE_TEST_REDIS_URL")
    if not base:
        binary = shutil.which("redis-server")
        if binary is None:
            required("redis-server (apt-get install -y redis-server)")
            raise AssertionError("unreachable")
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path_factory.mktemp("redis"))],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"redis://127.0.0.1:{port}/0"
    admin = redis.Redis.from_url(base)
    deadline = time.monotonic() + 10
    while True:
        try:
            admin.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                pytest.fail(f"Redis at {base} did not answer")
            time.sleep(0.05)
    admin.acl_setuser(
        TEST_USER, enabled=True, reset=True, passwords=[f"+{TEST_PASSWORD}"],
        keys=["*"], channels=["*"], categories=["+@all"], commands=["-keys"],
    )  # fmt: skip
    host, port = (
        admin.connection_pool.connection_kwargs["host"],
        admin.connection_pool.connection_kwargs["port"],
    )
    yield f"redis://{TEST_USER}:{TEST_PASSWORD}@{host}:{port}/{TEST_DB}"
    admin.acl_deluser(TEST_USER)
    admin.close()
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Responder = Callable[[Request], tuple[int, Any]]


@dataclass
class FakeHTTP:
    """The scripted server: ``respond(request) -> (status, json body or bytes)``."""

    url: str
    requests: list[Request] = field(default_factory=list)
    respond: Responder = field(default=lambda req: (200, {"ok": True}))
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    errors: list[str] = field(default_factory=list)  # exceptions raised by ``respond``

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


@pytest.fixture
def http_server() -> Iterator[FakeHTTP]:
    state = FakeHTTP(url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            state.requests.append(req)
            if state.delay:
                time.sleep(state.delay)
            try:
                status, body = state.respond(req)
            except Exception as exc:
                state.errors.append(f"{req.method} {req.path}: {type(exc).__name__}: {exc}")
                status, body = 500, {"fake-server-error": str(exc)}
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    if state.errors:
        pytest.fail("the fake HTTP server's responder raised:\n" + "\n".join(state.errors))


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    aiosmtpd = import_or_fail("aiosmtpd.controller", "pip install aiosmtpd: in the test extra")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox(host="127.0.0.1", port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            msg = message_from_bytes(envelope.content)
            msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            box.messages.append(msg)
            return "250 OK"

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            box.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=auth_data.password == b"s3cret")
        return AuthResult(success=False)

    controller = aiosmtpd.Controller(
        Handler(),
        hostname=box.host,
        port=box.port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"
