"""A local HTTP server that replays recorded World Bank API responses.

Tests script it per (indicator, page): a queue of replies (status, body from a fixture file or
raw bytes, an optional delay before answering). Each request takes the next reply; the last one
repeats. Every request is recorded, so tests can assert what the real client asked for.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from smepulse.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "worldbank"


@dataclass
class Reply:
    body: bytes
    status: int = 200
    delay: float = 0.0


@dataclass
class Replay:
    base_url: str = ""
    routes: dict[tuple[str, int], list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        indicator: str,
        page: int = 1,
        *,
        fixture: str | None = None,
        body: bytes | None = None,
        status: int = 200,
        delay: float = 0.0,
    ) -> None:
        """Queue one reply for ``indicator``'s ``page``."""
        data = (FIXTURES / fixture).read_bytes() if fixture else (body or b"")
        self.routes.setdefault((indicator, page), []).append(Reply(data, status, delay))

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.requests.clear()

    def next_reply(self, indicator: str, page: int) -> Reply | None:
        with self.lock:
            queue = self.routes.get((indicator, page))
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def pages_requested(self, indicator: str) -> list[str]:
        return [q.get("page", "") for path, q in self.requests if path.endswith(f"/{indicator}")]


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            with replay.lock:
                replay.requests.append((url.path, query))
            indicator = url.path.rstrip("/").rsplit("/", 1)[-1]
            reply = replay.next_reply(indicator, int(query.get("page", "1")))
            if reply is None:
                reply = Reply(b"no recorded response for this request", 404)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def replay() -> Iterator[Replay]:
    state = Replay()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v2"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A base URL where nothing listens (connection refused): the API is unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


def make_settings(tmp_path: Path, base_url: str, indicators: list[str], day: dt.date) -> Settings:
    """Settings for one stage run: a temp project folder, fast retries, a short timeout."""
    return Settings(
        home=tmp_path,
        logical_date=day,
        worldbank_base_url=base_url,
        worldbank_country="VN",
        worldbank_indicators=indicators,
        worldbank_start_year=2014,
        http_timeout_seconds=0.5,
        http_retries=2,
        http_backoff_seconds=0.01,
    )
