"""The UDP listener: moves datagrams between the socket and the server core."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable

from nameserver.server import DnsServer, Replies

log = logging.getLogger(__name__)


class UdpProtocol(asyncio.DatagramProtocol):
    """Queries answered without waiting are answered inline; the others finish as tasks (kept
    until they are done)."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        replies = self.server.respond(data, (addr[0], addr[1]), "udp")
        if type(replies) is tuple:
            transport = self.transport
            for reply in replies:
                transport.sendto(reply, addr)  # type: ignore[union-attr]
            return
        task = asyncio.get_running_loop().create_task(self._finish(replies, addr))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, pending: Awaitable[Replies], addr: tuple) -> None:
        replies = await pending
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
