"""HTTP endpoints of the operator: probes on ``operator_health_port``, metrics on
``operator_metrics_port`` (aiohttp, which kopf already depends on; served from kopf's loop).

* ``GET /healthz`` - liveness: the event loop answers (a wedged loop fails the probe);
* ``GET /readyz`` - readiness: startup finished and the API server answered within 30 s;
* ``GET /metrics`` - Prometheus text format (:mod:`smepulse_operator.metrics`).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smepulse_operator.metrics import REGISTRY
from smepulse_operator.runtime import Runtime


async def start_servers(runtime: Runtime, host: str = "0.0.0.0") -> list[web.AppRunner]:
    """Start both servers; the caller keeps the runners and passes them to :func:`stop_servers`."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        api = runtime.ready and await loop.run_in_executor(runtime.pool, runtime.api_ok)
        body = {"status": "ok" if api else "not ready", "startup": runtime.ready, "api": api}
        return web.json_response(body, status=200 if api else 503)

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(REGISTRY))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    health_app = web.Application()
    health_app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    metrics_app = web.Application()
    metrics_app.add_routes([web.get("/metrics", metrics)])
    runners = []
    for app, port in (
        (health_app, runtime.settings.operator_health_port),
        (metrics_app, runtime.settings.operator_metrics_port),
    ):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    return runners


async def stop_servers(runners: list[web.AppRunner]) -> None:
    for runner in runners:
        await runner.cleanup()
