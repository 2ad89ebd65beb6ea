"""The UDP listener: moves datagrams between a bound socket and the server core, in batches.

When the socket is readable, `nameserver._hotpath.serve` (C: recvmmsg/sendmmsg on Linux) reads
up to `BATCH` datagrams in one system call, calls `_answer` for each and sends the replies it
returns in one system call; the event loop is given back after `ROUNDS` batches so TCP, timers and
tasks are never starved. Per packet, what is left in Python is `DnsServer.respond` and the rate
limiter; and not even that for a wire cache hit while nothing else must see the replies (no rate
limiting, metrics, query log or recursion ACL: `DnsServer.fast_cache`), which the C answers itself.

Queries answered without waiting (the wire cache, the authoritative path) are answered inside the
batch; the others finish as tasks (kept until they are done) and send their reply alone. Every
reply passes the server's rate limiter (`nameserver/rrl.py`). Replies the socket has no room for
wait in a bounded queue until it is writable; past `MAX_WAITING` they are dropped and counted (a
client whose reply was dropped asks again, as after any lost datagram).
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import Awaitable

from nameserver import _hotpath  # type: ignore[attr-defined]
from nameserver.config import Address
from nameserver.server import DnsServer, Replies

log = logging.getLogger(__name__)
BATCH = 32  # datagrams per system call
ROUNDS = 8  # batches per readable event before the loop runs its other work
MAX_WAITING = 4096  # replies waiting for room in the socket's send buffer


class UdpListener:
    """Answers the datagrams of one bound, non-blocking UDP socket on the running event loop."""

    def __init__(self, server: DnsServer, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.server = server
        self.sock = sock
        self.address: Address = sock.getsockname()[:2]
        self.received = 0  # datagrams read from the socket
        self.dropped = 0  # replies dropped because the send buffer stayed full
        self._fd = sock.fileno()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: deque[tuple[bytes, tuple]] = deque()

    def start(self) -> None:
        """Begin answering (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        """Stop reading, cancel unfinished answers and close the socket."""
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._loop = None
        for task in self._tasks:
            task.cancel()
        self._waiting.clear()
        self.sock.close()

    def _readable(self) -> None:
        server = self.server
        for _ in range(ROUNDS):
            try:
                received, unsent, hits = _hotpath.serve(self._fd, self._answer, BATCH, server.fast_cache())
            except OSError as exc:  # e.g. an ICMP error reported on the socket: the next read goes on
                log.debug("udp: %s", exc)
                return
            self.received += received
            if hits:
                server.wirecache.hits += hits  # type: ignore[union-attr]
            if unsent:
                self._wait(unsent)
            if received < BATCH:
                return

    def inject(self, data: bytes, addr: tuple) -> None:
        """Answer `data` as if this socket had received it from `addr`, and reply from this socket
        (a datagram another process's socket on this address read: `nameserver.workers`)."""
        reply = self._answer(data, addr)
        if reply is not None:
            self._transmit(reply, addr)

    def _answer(self, data: bytes, addr: tuple) -> bytes | None:
        """The reply to send now for the datagram `data` from `addr`, or None (none, or later)."""
        replies = self.server.respond(data, (addr[0], addr[1]), "udp")
        if type(replies) is not tuple:
            task = asyncio.get_running_loop().create_task(self._finish(replies, addr))  # type: ignore[arg-type]
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        if not replies:
            return None
        first = self._limited(replies[0], addr)
        for reply in replies[1:]:
            self._send(reply, addr)
        return first

    async def _finish(self, pending: Awaitable[Replies], addr: tuple) -> None:
        replies = await pending
        if self._loop is None:
            return
        for reply in replies:
            self._send(reply, addr)

    def _limited(self, reply: bytes, addr: tuple) -> bytes | None:
        """`reply` as response rate limiting lets it through (None: not at all)."""
        rrl = self.server.rrl
        return reply if rrl is None else rrl.limit(reply, addr[0])

    def _send(self, reply: bytes, addr: tuple) -> None:
        """Send one reply outside a batch, after the rate limiter."""
        limited = self._limited(reply, addr)
        if limited is not None:
            self._transmit(limited, addr)

    def _transmit(self, reply: bytes, addr: tuple) -> None:
        """Send one reply now, or queue it when the socket has no room."""
        if self._waiting:
            self._wait([(reply, addr)])
            return
        try:
            self.sock.sendto(reply, addr)
        except (BlockingIOError, InterruptedError):
            self._wait([(reply, addr)])
        except OSError as exc:
            log.debug("udp: reply to %s: %s", addr[0], exc)

    def _wait(self, replies: list[tuple[bytes, tuple]]) -> None:
        """Queue replies until the socket is writable; drop (and count) past `MAX_WAITING`."""
        for item in replies:
            if len(self._waiting) >= MAX_WAITING:
                self.dropped += 1
                continue
            self._waiting.append(item)
        if self._loop is not None:
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        waiting = self._waiting
        while waiting:
            reply, addr = waiting[0]
            try:
                self.sock.sendto(reply, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("udp: reply to %s: %s", addr[0], exc)
            waiting.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self._fd)

