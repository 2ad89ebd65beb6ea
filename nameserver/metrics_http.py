"""The metrics endpoint: `GET /metrics` (Prometheus text format 0.0.4) on its own HTTP port.

    exporter = MetricsExporter(metrics, ("127.0.0.1", 9153))
    await exporter.start()          # an attachment of the runner: started with the listeners
    print(exporter.address)         # the bound address (port 0 picks one)
    await exporter.stop()

An aiohttp application apart from the DNS sockets (aiohttp's `AppRunner` and `TCPSite`, as the
engines serve theirs); the text is rendered on each scrape from `ServerMetrics`, on the event
loop (a few hundred lines: well under a millisecond). Off unless `semdns serve --metrics` asks;
bound to loopback when only a port is given (`parse_metrics_address`).
"""
from __future__ import annotations

import logging

from aiohttp import web

from nameserver.config import Address, format_address, parse_address
from nameserver.metrics import ServerMetrics

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_metrics_address(text: str) -> Address:
    """`ADDR:PORT`, `[V6]:PORT`, `:PORT` or a bare `PORT` (the last two: 127.0.0.1)."""
    text = text.strip()
    if text.isdigit():
        text = f":{text}"
    return parse_address(text, default_port=9153)


class MetricsExporter:
    """Serves `metrics` at `http://<address>/metrics` while started."""

    def __init__(self, metrics: ServerMetrics, address: Address) -> None:
        self.metrics = metrics
        self.requested = address
        self.address: Address | None = None
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        host, port = self.requested
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0] if runner.addresses else (host, port)
        self.address = (host, int(bound[1]))
        log.info("metrics on http://%s/metrics", format_address(self.address))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        assert self.address is not None, "not started"
        return f"http://{format_address(self.address)}/metrics"
