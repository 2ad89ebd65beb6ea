"""A cache of rendered answers for the hot path, keyed on the query's bytes, bounded in bytes.

The key is everything in the query except its ID, the case of its QNAME and the UDP size its OPT
record advertises: the transport, the header flags and counts, the lower-cased QNAME, QTYPE/QCLASS,
and the rest of the OPT record (version, DO bit, options). A hit gets the query's ID, and the
query's own QNAME bytes spliced back at offset 12 (names in the answer that equal the QNAME are
compression pointers to it, so they take the client's case too).

The UDP size shapes an answer only through truncation (`render.py`: the whole answer when it fits
the negotiated size, else TC=1 and the question only; our OPT advertises our own size), so one key
holds at most two variants, each served only where it is the answer a fresh render would give:
- the whole answer (no TC), to every client whose negotiated size is at least its length;
- the truncated answer (TC, no answer or authority records), to every client whose size is at most
  the largest size it was rendered for (the whole answer did not fit that, so it fits no smaller).
A client between the two gets a miss, and its answer is stored. So 4,000 queries differing only in
their UDP size leave two entries, not 4,000.

Only plain queries qualify (QR=0, opcode QUERY, one question, no answer/authority records, at most
one additional record, no compression in the QNAME); anything else takes the full path. Entries
belong to one zone catalog: `store` ignores answers computed from an older catalog and the cache
empties itself when the catalog changes, so a reload never serves stale data.

An entry stored with an expiry (a `time.monotonic()` instant) is served only before it and dropped
when met after it. An entry stored with a TTL epoch (the whole second, on the same clock, at which
its TTLs were computed, for answers from a cache that counts in whole seconds) has every TTL
lowered by the whole seconds elapsed since, on each hit: the countdown a fresh answer would show.

The cache holds at most `max_entries` entries and `max_bytes` bytes (the lengths of keys and
answers plus `ENTRY_OVERHEAD` per entry); the least recently used entries leave first.
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

from nameserver import _hotpath  # type: ignore[attr-defined]
from nameserver.config import DEFAULT_MAX_UDP
from nameserver.wire import count_down, echoes_question, splice_question, ttl_offsets

TRANSPORT_TAGS = {"udp": b"u", "tcp": b"t"}  # the key's prefix: answers differ by transport (sizes)
WHOLE, TRUNCATED = b"W", b"T"  # the last octet of a key: which variant the entry holds
ENTRY_OVERHEAD = 160  # approximate bytes of an entry besides its key and answer (objects, dict slot)
TC = 0x02  # the TC bit in the third octet of a header
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class _Entry(NamedTuple):
    """One cached answer (`nameserver/_hotpath.c` reads `answer`, `expires` and `limit` by position)."""

    answer: bytes
    expires: float | None
    epoch: int | None
    ttls: tuple[int, ...]
    limit: int  # whole: the least size it fits; truncated: the largest size it was rendered for


class _Located(NamedTuple):
    key: bytes  # without its variant octet
    qname_end: int
    size: int  # the size the client negotiated (edns.negotiate's max_size)


class WireCache:
    """Rendered answers by their query's key (`_hotpath.locate`: the transport, the UDP size left out),
    bounded in entries and in bytes (least recently used entries leave first)."""

    def __init__(
        self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic, *,
        max_bytes: int = DEFAULT_MAX_BYTES, max_udp: int = DEFAULT_MAX_UDP,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_udp = max_udp
        self.clock = clock
        self.bytes = 0  # what the entries take, as `max_bytes` counts it
        self._entries: dict[bytes, _Entry] = {}
        self._owner: Any = None
        self.hits = 0
        self.misses = 0
        self.hit_end = 0  # where the QNAME of the last query answered ends (its QTYPE follows: metrics)

    def lookup(self, wire: bytes, transport: str, catalog: Any) -> bytes | None:
        """The cached answer for `wire`, patched with its ID and QNAME, or None."""
        if catalog is not self._owner:
            self._clear()
            self._owner = catalog
        located = self._locate(wire, transport)
        if located is None:
            return None
        key, end, size = located
        entry = self._entries.get(key + WHOLE)
        if entry is not None and size >= entry.limit:
            key += WHOLE
        else:
            key += TRUNCATED
            entry = self._entries.get(key)
            if entry is None or size > entry.limit:
                self.misses += 1
                return None
        answer = entry.answer
        if entry.expires is not None:
            now = self.clock()
            if now >= entry.expires:
                self._remove(key)
                self.misses += 1
                return None
            if entry.epoch is not None and int(now) > entry.epoch:
                answer = count_down(answer, entry.ttls, int(now) - entry.epoch)
        self._entries[key] = self._entries.pop(key)  # the most recently used goes last
        self.hits += 1
        self.hit_end = end
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
        located = self._locate(wire, transport)
        if located is None:
            return
        key, end, size = located
        if not echoes_question(answer, wire, end):
            return  # the reply does not echo the question where we will patch it
        if not answer[2] & TC:
            key, limit = key + WHOLE, len(answer)
        elif answer[6:10] == b"\x00\x00\x00\x00":  # truncated to the question (and OPT)
            key += TRUNCATED
            held = self._entries.get(key)
            limit = max(size, held.limit) if held is not None else size
        else:
            return  # TC with records: not a truncation this cache can tell apart by size
        cost = len(key) + len(answer) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        self._remove(key)
        entries = self._entries
        while entries and (len(entries) >= self.max_entries or self.bytes + cost > self.max_bytes):
            self._remove(next(iter(entries)))
        entries[key] = _Entry(answer, expires, ttl_epoch, ttls, limit)
        self.bytes += cost

    def __len__(self) -> int:
        return len(self._entries)

    def _locate(self, wire: bytes, transport: str) -> _Located | None:
        """The key of `wire` without its UDP size, its QNAME's end and its negotiated size
        (`nameserver._hotpath.locate`: the C that also answers UDP hits in `udp.py`)."""
        located = _hotpath.locate(wire, TRANSPORT_TAGS[transport], self.max_udp)
        return None if located is None else _Located(*located)

    def fast(self, store: Any) -> tuple[dict[bytes, _Entry], Any, Any, int]:
        """What `nameserver._hotpath.serve` answers UDP hits from itself: the entries, `store` and
        its current catalog, which the entries belong to (emptied first when the catalog changed,
        as `lookup` does), and the largest UDP size."""
        catalog = store.current
        if catalog is not self._owner:
            self._clear()
            self._owner = catalog
        return self._entries, store, catalog, self.max_udp

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(key) + len(entry.answer) + ENTRY_OVERHEAD

    def _clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
