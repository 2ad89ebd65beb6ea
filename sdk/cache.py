"""`RecordCache`: the stub's cache of the records around a route (engines' TXT, PTR, instances'
SRV/TXT, targets' A), for the TTL the server gave them.

Every question of a domain ends at the same `_llm._tcp.<domain>` records, so after the first
question of a domain a resolution costs one round trip (its SRV and explain), not two or three.
Only queries without the question in them are kept (no `q`/`explain` label, no text option): the
route itself is the server's and the resolver's to cache. A reply is kept for the least TTL of
its answer and authority RRsets (an absence: the SOA's, RFC 2308), at most `max_ttl` seconds, and
only when NOERROR; at most `size` entries, the oldest dropped first.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from codec.edns_text import TEXT_OPTION
from sdk.message import SOA, Query, Reply, Soa, labels_of

Key = tuple[str, int]
SEMANTIC_LABELS = ("q", "explain")


def cache_key(query: Query) -> Key | None:
    """(name, type) of a query the cache may answer; None for a question's own queries."""
    if any(label in SEMANTIC_LABELS for label in labels_of(query.name)):
        return None
    if any(code == TEXT_OPTION for code, _ in query.options):
        return None
    return query.name.lower(), query.rdtype


def reply_ttl(reply: Reply) -> int:
    """Seconds a reply may be kept: 0 unless NOERROR; the least TTL (SOA: its MINIMUM too)."""
    if reply.rcode != 0:
        return 0
    ttls = [rr.ttl for rr in (*reply.answer, *reply.authority)]
    ttls += [min(rr.ttl, rr.data.minimum) for rr in reply.authority if rr.rdtype == SOA and isinstance(rr.data, Soa)]
    return min(ttls, default=0)


class RecordCache:
    def __init__(self, size: int = 512, max_ttl: int = 300, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.max_ttl, self.clock = size, max_ttl, clock
        self._entries: OrderedDict[Key, tuple[float, Reply]] = OrderedDict()

    def get(self, query: Query) -> Reply | None:
        key = cache_key(query)
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return None
        expires, reply = entry
        if expires <= self.clock():
            del self._entries[key]  # type: ignore[arg-type]
            return None
        return reply

    def put(self, query: Query, reply: Reply) -> None:
        key = cache_key(query)
        ttl = min(self.max_ttl, reply_ttl(reply))
        if key is None or ttl <= 0:
            return
        self._entries[key] = (self.clock() + ttl, reply)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
