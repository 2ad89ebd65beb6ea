"""One classification walk for the queries that ask the same question at once.

A client that wants a route and its explanation sends the SRV of `<text>.q.<node>` and the TXT of
`<text>.explain.<node>` together (the SDK does, in one round): two names, one question. Each would
walk the hierarchy on its own, embedding the same text twice on the server's one encoder thread.
`WalkMemo` lets the second share the first's walk: while a walk is under way, a query for the
same (catalog generation, node, text, client embedding option) awaits it instead of starting
another, and a finished walk is reused for `linger` seconds (the two queries of a round may be
served one after the other). Nothing else is kept: a walk a shed step decided is shared only
while it runs (a shed answer is for this moment), and the memo holds at most `size` walks,
keyed by a digest of the text (never the text).

The key carries the client's embedding option as sent: a walk routed by a client's vector is
shared only with queries carrying the very same bytes, as the wire cache already does
(`nameserver/semantic/handler.py`, "A client's valid embedding routes that one answer only").
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Awaitable, Callable

import dns.name

from routing.descend import Hop

Hops = tuple[Hop, ...]
LINGER = 2.0  # seconds a finished walk answers the same question again
SIZE = 512  # walks kept at most (running and finished)


def walk_key(generation: int, node: dns.name.Name, text: str, embedding: bytes | None) -> bytes:
    """The memo's key: a digest of what decides a walk (the text and option only as a digest)."""
    digest = hashlib.blake2b(digest_size=20)
    for part in (str(generation).encode(), node.to_wire() or b"", text.encode("utf-8", "surrogatepass")):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(b"\x01" + embedding if embedding is not None else b"\x00")
    return digest.digest()


class WalkMemo:
    """Walks under way or just finished, by `walk_key`; `runs` counts walks started, `shared`
    the queries answered by another query's walk (for tests and stats)."""

    def __init__(self, linger: float = LINGER, size: int = SIZE) -> None:
        self.linger = linger
        self.size = size
        self._walks: OrderedDict[bytes, tuple[asyncio.Future[Hops | None], float]] = OrderedDict()
        self.runs = 0
        self.shared = 0

    async def walk(self, key: bytes, run: Callable[[], Awaitable[Hops]]) -> Hops:
        """The hops of `key`'s walk: the one under way or finished within `linger`, else `run()`."""
        loop = asyncio.get_running_loop()
        while True:
            entry = self._walks.get(key)
            if entry is None:
                return await self._run(loop, key, run)
            future, until = entry
            if future.done() and loop.time() >= until:
                del self._walks[key]
                return await self._run(loop, key, run)
            hops = await asyncio.shield(future)
            if hops is not None:
                self.shared += 1
                return hops
            # the query walking it failed (its client gone): its entry is gone, walk or wait again

    async def _run(self, loop: asyncio.AbstractEventLoop, key: bytes, run: Callable[[], Awaitable[Hops]]) -> Hops:
        future: asyncio.Future[Hops | None] = loop.create_future()
        self._walks[key] = (future, float("inf"))
        while len(self._walks) > self.size:
            self._walks.popitem(last=False)
        self.runs += 1
        hops: Hops | None = None
        try:
            hops = await run()
            return hops
        finally:
            future.set_result(hops)  # None: this query failed (cancelled); the others walk themselves
            current = self._walks.get(key)
            if current is not None and current[0] is future:
                if hops is None or any(hop.shed is not None for hop in hops):
                    del self._walks[key]
                else:
                    self._walks[key] = (future, loop.time() + self.linger)
