"""A World Bank API replay for stage Pods on the real node: ``python -m
tests.image.worldbank_replay --bind <node address> --log <file>``, started with the node's
``nsenter --net=...`` prefix, so it listens inside the node's network namespace where Pods
reach it through their route to the node (as they reach CoreDNS), and nothing leaves it.

It answers ``GET .../indicator/<code>?page=N`` with the recorded responses of
tests/integration/external/fixtures/worldbank/ (:data:`PAGES`), 404 for anything else;
it prints its port on the first line of stdout, and appends each request (``path?query``
and the status) to ``--log``, so the test can see what the stage asked for.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "integration/external/fixtures/worldbank"
#: (indicator, page) -> fixture file: GDP over two pages, CPI on one.
PAGES = {
    ("NY.GDP.MKTP.CD", 1): "NY.GDP.MKTP.CD_page1.json",
    ("NY.GDP.MKTP.CD", 2): "NY.GDP.MKTP.CD_page2.json",
    ("FP.CPI.TOTL.ZG", 1): "FP.CPI.TOTL.ZG.json",
}
INDICATORS = sorted({indicator for indicator, _ in PAGES})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    log = args.log

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            indicator = url.path.rstrip("/").rsplit("/", 1)[-1]
            name = PAGES.get((indicator, int(query.get("page", "1") or 1)))
            body = (FIXTURES / name).read_bytes() if name else b"no recorded response"
            status = 200 if name else 404
            with log.open("a") as out:
                out.write(f"{status} {self.path}\n")
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
