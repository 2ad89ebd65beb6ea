"""The UDP listener: moves datagrams between the socket and the server core."""
from __future__ import annotations

import asyncio
import logging

from nameserver.server import DnsServer

log = logging.getLogger(__name__)


class UdpProtocol(asyncio.DatagramProtocol):
    """Wire-cache hits are answered inline; misses run as tasks (kept until they finish)."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        hit = self.server.cached(data, "udp")
        if hit is not None:
            self.transport.sendto(hit, addr)  # type: ignore[union-attr]
            return
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple) -> None:
        replies = await self.server.handle(data, (addr[0], addr[1]), "udp")
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for reply in replies:
            transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks:
            task.cancel()
        self.transport = None
