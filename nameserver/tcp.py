"""The TCP listener: 2-byte framing (RFC 1035 §4.2.2, RFC 7766), pipelining, limits.

Each connection reads queries as they arrive and answers each as soon as it is ready (out of order
when a later one finishes first). The limits (`TcpLimits`) keep one client from holding memory or
connection slots:
- at most `max_connections` connections per listener, and at most `max_per_address` from one client
  address (further ones are aborted at once), so one address cannot starve the others;
- at most `max_inflight` queries run per connection (reading pauses beyond that);
- back-pressure: once a connection's unsent answers pass `write_high_water` bytes (asyncio's
  `pause_writing`), it stops reading and answering queries until the client has read them down
  (`resume_writing`), so a client that pipelines and never reads holds a bounded buffer;
- a connection closes after `idle_timeout` seconds without a whole query and nothing in flight
  (single bytes do not count), and a query must arrive whole within `message_timeout` seconds of
  its first byte (slowloris): either way the connection is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Awaitable

from nameserver.server import DnsServer, Replies

log = logging.getLogger(__name__)
LENGTH = struct.Struct("!H")
MIN_TIMER = 0.05  # the shortest re-arm of a connection's timer, in seconds


@dataclass(frozen=True)
class TcpLimits:
    """What one TCP listener allows (see the module's docstring)."""

    idle_timeout: float = 10.0
    max_connections: int = 256
    max_inflight: int = 64
    max_per_address: int = 32
    message_timeout: float = 5.0
    write_high_water: int = 64 * 1024


class TcpListener:
    """Shared state of one TCP listening socket: its open connections, counted per address."""

    def __init__(self, server: DnsServer, limits: TcpLimits) -> None:
        self.server = server
        self.limits = limits
        self.connections: set[TcpConnection] = set()
        self.per_address: Counter[str] = Counter()

    def protocol(self) -> "TcpConnection":
        return TcpConnection(self)

    def admit(self, connection: "TcpConnection") -> bool:
        """Count `connection` in, or False when the listener or its address is full."""
        limits, host = self.limits, connection.peer[0]
        if len(self.connections) >= limits.max_connections:
            log.warning("tcp: connection limit (%d) reached", limits.max_connections)
            return False
        if self.per_address[host] >= limits.max_per_address:
            log.warning("tcp: %s has %d connections open (the limit per address)", host, limits.max_per_address)
            return False
        self.connections.add(connection)
        self.per_address[host] += 1
        return True

    def release(self, connection: "TcpConnection") -> None:
        """Count `connection` out (once; a refused connection was never counted)."""
        if connection in self.connections:
            self.connections.discard(connection)
            host = connection.peer[0]
            self.per_address[host] -= 1
            if not self.per_address[host]:
                del self.per_address[host]

    def buffered(self) -> int:
        """Bytes the open connections hold: unsent answers and unread query bytes."""
        return sum(connection.buffered() for connection in self.connections)

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close()


class TcpConnection(asyncio.Protocol):
    """One client connection: framing, pipelined answers, its limits and timers."""

    def __init__(self, listener: TcpListener) -> None:
        self.listener = listener
        self.server = listener.server
        self.limits = listener.limits
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._buffer = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading = True
        self._write_paused = False
        self._eof = False
        self._last = 0.0  # when the last whole query arrived or the last answer was finished
        self._started: float | None = None  # when the first byte of the query being read arrived
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (peer[0], peer[1])
        if not self.listener.admit(self):
            transport.abort()  # type: ignore[attr-defined]
            return
        high = self.limits.write_high_water
        assert self.transport is not None  # set above
        self.transport.set_write_buffer_limits(high=high, low=high // 4)
        self._last = self._now()
        self._arm_timer(self.limits.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if not self._buffer:
            self._started = self._now()
            self._check_by(self._started + self.limits.message_timeout)
        self._buffer += data
        self._drain()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._tasks:
            self.close()
        return True  # keep the write side open until the answers in flight are sent

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.release(self)
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        self.transport = None

    # -- the work ----------------------------------------------------------------------------
    def _drain(self) -> None:
        """Answer the whole queries in the buffer while answers may be written, then decide
        whether to read on."""
        buffer = self._buffer
        while len(buffer) >= 2 and self._may_answer() and self.transport is not None:
            (size,) = LENGTH.unpack_from(buffer)
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._last = self._now()
            self._started = self._last if buffer else None
            self._dispatch(message)
        self._update_reading()

    def _update_reading(self) -> None:
        """Read only while answers drain and fewer than `max_inflight` queries run."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        want = self._may_answer()
        if want and not self._reading:
            if self._buffer:
                self._started = self._now()  # the client's clock starts again when we read again
                self._check_by(self._started + self.limits.message_timeout)
            transport.resume_reading()
        elif not want and self._reading:
            transport.pause_reading()
        self._reading = want

    def _may_answer(self) -> bool:
        return not self._write_paused and len(self._tasks) < self.limits.max_inflight

    def _dispatch(self, message: bytes) -> None:
        replies = self.server.respond(message, self.peer, "tcp")
        if type(replies) is tuple:
            self._send(replies)
            return
        task = asyncio.get_running_loop().create_task(self._answer(replies))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def _answer(self, pending: Awaitable[Replies]) -> None:
        self._send(await pending)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._last = self._now()
        if self._eof and not self._tasks:
            self.close()
        elif not self._reading:
            self._drain()

    def _send(self, replies: tuple[bytes, ...]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or not replies:
            return
        transport.write(b"".join(LENGTH.pack(len(r)) + r for r in replies))

    def buffered(self) -> int:
        """Bytes this connection holds: answers not yet sent and query bytes not yet answered."""
        transport = self.transport
        unsent = transport.get_write_buffer_size() if transport is not None else 0
        return unsent + len(self._buffer)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _drop(self, why: str) -> None:
        """Close now: with unsent answers by a reset (a client that does not read never drains them)."""
        log.debug("tcp: dropping connection from %s: %s", self.peer[0], why)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    # -- timers ------------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _arm_timer(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(max(delay, MIN_TIMER), self._check_timers)

    def _check_by(self, when: float) -> None:
        """Make sure the timer fires no later than `when` (a loop time)."""
        timer = self._timer
        if timer is not None and timer.when() > when + MIN_TIMER:
            timer.cancel()
            self._arm_timer(when - self._now())

    def _check_timers(self) -> None:
        """Drop a connection whose query is late or that has been idle; else check again later."""
        now, limits = self._now(), self.limits
        delay = limits.idle_timeout
        if self._started is not None and self._reading:
            late = now - self._started - limits.message_timeout
            if late >= 0:
                self._drop(f"no whole query {limits.message_timeout:g} s after its first byte")
                return
            delay = -late
        if not self._tasks:
            idle = now - self._last
            if idle >= limits.idle_timeout:
                self._drop("idle")
                return
            delay = min(delay, limits.idle_timeout - idle)
        self._arm_timer(delay)
