"""A cache of rendered answers for the hot path, keyed on the query's bytes.

The key is everything in the query except its ID and the case of its QNAME: the transport, the
header flags and counts, the lower-cased QNAME, QTYPE/QCLASS, and the OPT record's bytes (UDP size,
version, DO bit, options). So anything that shapes an answer (RD/CD/DO, EDNS presence and size, the
transport's size limit) is in the key. A hit gets the query's ID, and the query's own QNAME bytes
spliced back at offset 12 (names in the answer that equal the QNAME are compression pointers to it,
so they take the client's case too).

Only plain queries qualify (QR=0, opcode QUERY, one question, no answer/authority records, at most
one additional record, no compression in the QNAME); anything else takes the full path. Entries
belong to one zone catalog: `store` ignores answers computed from an older catalog and the cache
empties itself when the catalog changes, so a reload never serves stale data.

An entry stored with an expiry (a `time.monotonic()` instant) is served only before it and dropped
when met after it. An entry stored with a TTL epoch (the whole second, on the same clock, at which
its TTLs were computed, for answers from a cache that counts in whole seconds) has every TTL
lowered by the whole seconds elapsed since, on each hit: the countdown a fresh answer would show.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from nameserver.wire import count_down, echoes_question, query_key, splice_question, ttl_offsets

TRANSPORT_TAGS = {"udp": b"u", "tcp": b"t"}  # the key's prefix: answers differ by transport (sizes)


class WireCache:
    """Rendered answers by `wire.query_key` (prefixed with the transport), bounded (oldest
    entries leave first)."""

    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[bytes, tuple[bytes, float | None, int | None, tuple[int, ...]]] = {}
        self._owner: Any = None
        self.hits = 0
        self.misses = 0

    def lookup(self, wire: bytes, transport: str, catalog: Any) -> bytes | None:
        """The cached answer for `wire`, patched with its ID and QNAME, or None."""
        if catalog is not self._owner:
            self._entries.clear()
            self._owner = catalog
        found = query_key(wire, TRANSPORT_TAGS[transport])
        if found is None:
            return None
        key, end = found
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        answer, expires, epoch, ttls = entry
        if expires is not None:
            now = self.clock()
            if now >= expires:
                del self._entries[key]
                self.misses += 1
                return None
            if epoch is not None and int(now) > epoch:
                answer = count_down(answer, ttls, int(now) - epoch)
        self.hits += 1
        return splice_question(answer, wire, end)

    def store(
        self, wire: bytes, transport: str, answer: bytes, catalog: Any,
        expires: float | None = None, ttl_epoch: int | None = None,
    ) -> None:
        """Keep `answer` (the reply to `wire`, computed from `catalog`) if it is current, until
        `expires` (a clock instant; None: as long as the catalog), its TTLs counting down from
        `ttl_epoch` (a whole second on the clock; None: they stay as they are). An entry with an
        epoch needs an expiry no later than when its first TTL reaches zero."""
        if catalog is not self._owner or (expires is not None and self.clock() >= expires):
            return
        ttls: tuple[int, ...] = ()
        if ttl_epoch is not None:
            found = ttl_offsets(answer)
            if found is None or expires is None:
                return
            ttls = found
        keyed = query_key(wire, TRANSPORT_TAGS[transport])
        if keyed is None:
            return
        key, end = keyed
        if not echoes_question(answer, wire, end):
            return  # the reply does not echo the question where we will patch it
        entries = self._entries
        if len(entries) >= self.max_entries:
            del entries[next(iter(entries))]
        entries[key] = (answer, expires, ttl_epoch, ttls)

    def __len__(self) -> int:
        return len(self._entries)

