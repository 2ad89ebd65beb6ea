"""The UDP listener: moves datagrams between the socket and the server core."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable

from nameserver.server import DnsServer, Replies

log = logging.getLogger(__name__)


class UdpProtocol(asyncio.DatagramProtocol):
    """Queries answered without waiting are answered inline; the others finish as tasks (kept
    until they are done). Every reply passes the server's rate limiter (`nameserver/rrl.py`)."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        replies = self.server.respond(data, (addr[0], addr[1]), "udp")
        if type(replies) is tuple:
            self._send(replies, addr)
            return
        task = asyncio.get_running_loop().create_task(self._finish(replies, addr))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, pending: Awaitable[Replies], addr: tuple) -> None:
        replies = await pending
        if self.transport is None or self.transport.is_closing():
            return
        self._send(replies, addr)

    def _send(self, replies: Replies, addr: tuple) -> None:
        """Send `replies` to `addr`, as the server's response rate limiting lets through."""
        transport = self.transport
        rrl = self.server.rrl
        for reply in replies:
            if rrl is not None:
                limited = rrl.limit(reply, addr[0])
                if limited is None:
                    continue
                reply = limited
            transport.sendto(reply, addr)  # type: ignore[union-attr]

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks:
            task.cancel()
        self.transport = None
