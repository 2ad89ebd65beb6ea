"""The TCP listener: 2-byte framing (RFC 1035 §4.2.2, RFC 7766), pipelining, limits.

Each connection reads queries as they arrive and answers each as soon as it is ready (out of order
when a later one finishes first). A connection closes after `idle_timeout` seconds with nothing in
flight; at most `max_inflight` queries run per connection (reading pauses beyond that); at most
`max_connections` connections are open per listener (further ones are closed at once).
"""
from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Awaitable

from nameserver.server import DnsServer, Replies

log = logging.getLogger(__name__)
LENGTH = struct.Struct("!H")


@dataclass(frozen=True)
class TcpLimits:
    idle_timeout: float = 10.0
    max_connections: int = 256
    max_inflight: int = 64


class TcpListener:
    """Shared state of one TCP listening socket: its open connections."""

    def __init__(self, server: DnsServer, limits: TcpLimits) -> None:
        self.server = server
        self.limits = limits
        self.connections: set[TcpConnection] = set()

    def protocol(self) -> "TcpConnection":
        return TcpConnection(self)

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close()


class TcpConnection(asyncio.Protocol):
    def __init__(self, listener: TcpListener) -> None:
        self.listener = listener
        self.server = listener.server
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._buffer = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self._eof = False
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.listener.connections) >= self.listener.limits.max_connections:
            log.warning("tcp: connection limit (%d) reached", self.listener.limits.max_connections)
            transport.abort()  # type: ignore[attr-defined]
            return
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (peer[0], peer[1])
        self.listener.connections.add(self)
        self._touch()
        self._arm_timer(self.listener.limits.idle_timeout)

    def data_received(self, data: bytes) -> None:
        self._touch()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            (size,) = LENGTH.unpack_from(buffer)
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._dispatch(message)

    def eof_received(self) -> bool:
        self._eof = True
        if not self._tasks:
            self.close()
        return True  # keep the write side open until the answers in flight are sent

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        self.transport = None

    # -- the work ----------------------------------------------------------------------------
    def _dispatch(self, message: bytes) -> None:
        replies = self.server.respond(message, self.peer, "tcp")
        if type(replies) is tuple:
            self._send(replies)
            return
        task = asyncio.get_running_loop().create_task(self._answer(replies))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        if len(self._tasks) >= self.listener.limits.max_inflight and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True

    async def _answer(self, pending: Awaitable[Replies]) -> None:
        self._send(await pending)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._touch()
        if self._paused and self.transport is not None and len(self._tasks) < self.listener.limits.max_inflight:
            self._paused = False
            self.transport.resume_reading()
        if self._eof and not self._tasks:
            self.close()

    def _send(self, replies: tuple[bytes, ...]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or not replies:
            return
        transport.write(b"".join(LENGTH.pack(len(r)) + r for r in replies))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # -- idle timeout ------------------------------------------------------------------------
    def _touch(self) -> None:
        self._last = asyncio.get_running_loop().time()

    def _arm_timer(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        timeout = self.listener.limits.idle_timeout
        idle = asyncio.get_running_loop().time() - self._last
        if not self._tasks and idle >= timeout:
            log.debug("tcp: closing idle connection from %s", self.peer[0])
            self.close()
            return
        self._arm_timer(max(timeout - idle, 0.05))
