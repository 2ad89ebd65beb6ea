"""An RRset cache with TTL countdown, RFC 2308 negative caching, trust ranks and LRU eviction.

Pure (no I/O, no asyncio); the clock is injectable so tests drive time by hand.

- Positive entries are keyed ``(name, rdtype, rdclass)``; a hit returns a copy of the RRset whose
  TTL is the *remaining* time to live.
- Negative entries (RFC 2308): NXDOMAIN is cached per ``(name, rdclass)`` and answers every type at
  that name; NODATA is cached per ``(name, rdtype, rdclass)``. The negative TTL is
  ``min(SOA TTL, SOA MINIMUM)`` (RFC 2308 section 5), and the SOA travels with the entry so the
  answer's authority section can carry it with its remaining TTL.
- Every entry has a `Trust` rank (RFC 2181 section 5.4.1): glue or referral data never overwrites
  an authoritative answer, and callers ask for the minimum trust they accept (a stub client's
  answer needs `Trust.ANSWER`; finding a delegation accepts `Trust.GLUE`).
- The cache holds at most `max_entries` entries and `max_bytes` bytes (`entry_bytes`: the wire
  lengths of the owner and the records, plus `ENTRY_OVERHEAD`); the least recently used go first.
"""
from __future__ import annotations

import enum
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from common.names import name_wire

Clock = Callable[[], float]

#: the rdtype slot of an NXDOMAIN entry's key: it answers every type at the name.
_ANY_TYPE = dns.rdatatype.ANY
#: approximate bytes of an entry besides its wire lengths (the key, the entry and RRset objects).
ENTRY_OVERHEAD = 400
RECORD_FIXED = 10  # TYPE, CLASS, TTL and RDLENGTH of each record


class Trust(enum.IntEnum):
    """How far a cached RRset may be believed (RFC 2181 section 5.4.1, simplified)."""

    GLUE = 1  # additional section, or NS of a referral (non-authoritative)
    AUTHORITY = 2  # authority section of an authoritative answer
    ANSWER = 3  # answer section of an authoritative answer


class Kind(enum.Enum):
    """What a cache lookup found."""

    POSITIVE = "positive"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"


@dataclass(frozen=True)
class CacheHit:
    """A cache hit; `rrset` (positive) or `soa` (negative) carry the remaining TTL."""

    kind: Kind
    rrset: dns.rrset.RRset | None = None
    soa: dns.rrset.RRset | None = None
    trust: Trust = Trust.ANSWER


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    size: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass
class _Entry:
    kind: Kind
    expires: float
    trust: Trust
    rrset: dns.rrset.RRset | None
    soa: dns.rrset.RRset | None
    size: int = 0  # `entry_bytes`, set when stored


_Key = tuple[dns.name.Name, int, int]


def negative_ttl(soa: dns.rrset.RRset) -> int:
    """RFC 2308 section 5: the lesser of the SOA record's TTL and its MINIMUM field."""
    return min(soa.ttl, soa[0].minimum)


def entry_bytes(name: dns.name.Name, rrset: dns.rrset.RRset) -> int:
    """What an entry at `name` holding `rrset` counts against `max_bytes` (approximate)."""
    owner = len(name_wire(rrset.name))
    records = sum(owner + RECORD_FIXED + len(rdata.to_wire() or b"") for rdata in rrset)
    return len(name_wire(name)) + records + ENTRY_OVERHEAD


def _with_ttl(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    copy = rrset.copy()
    copy.ttl = ttl
    return copy


class RRsetCache:
    """The resolver's cache. Not thread-safe (one event loop owns it)."""

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        clock: Clock = time.monotonic,
        max_ttl: int = 86_400,
        max_negative_ttl: int = 3_600,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"RRsetCache: max_entries must be >= 1, got {max_entries}")
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0  # what the entries take, as `max_bytes` counts it
        self._clock = clock
        self._max_ttl = max_ttl
        self._max_negative_ttl = max_negative_ttl
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    # -- writing -------------------------------------------------------------------------------

    def put(self, rrset: dns.rrset.RRset, trust: Trust = Trust.ANSWER) -> None:
        """Cache a positive RRset for min(its TTL, max_ttl) seconds, unless a better one is held."""
        key = (rrset.name, rrset.rdtype, rrset.rdclass)
        ttl = min(rrset.ttl, self._max_ttl)
        if ttl <= 0 or not self._may_replace(key, trust):
            return
        self._store(key, _Entry(Kind.POSITIVE, self._clock() + ttl, trust, rrset.copy(), None))

    def put_nxdomain(self, name: dns.name.Name, soa: dns.rrset.RRset, rdclass: int = dns.rdataclass.IN) -> None:
        """Cache "`name` does not exist" (every type) for the RFC 2308 negative TTL."""
        self._put_negative((name, _ANY_TYPE, rdclass), Kind.NXDOMAIN, soa)

    def put_nodata(
        self, name: dns.name.Name, rdtype: int, soa: dns.rrset.RRset, rdclass: int = dns.rdataclass.IN
    ) -> None:
        """Cache "`name` exists but has no `rdtype`" for the RFC 2308 negative TTL."""
        self._put_negative((name, rdtype, rdclass), Kind.NODATA, soa)

    def _put_negative(self, key: _Key, kind: Kind, soa: dns.rrset.RRset) -> None:
        ttl = min(negative_ttl(soa), self._max_negative_ttl)
        if ttl <= 0 or not self._may_replace(key, Trust.ANSWER):
            return
        self._store(key, _Entry(kind, self._clock() + ttl, Trust.ANSWER, None, soa.copy()))

    def _may_replace(self, key: _Key, trust: Trust) -> bool:
        old = self._entries.get(key)
        return old is None or old.expires <= self._clock() or old.trust <= trust

    def _store(self, key: _Key, entry: _Entry) -> None:
        held = entry.rrset if entry.rrset is not None else entry.soa
        assert held is not None
        entry.size = entry_bytes(key[0], held)
        if entry.size > self._max_bytes:
            return
        self._drop(key)
        self._entries[key] = entry
        self.bytes += entry.size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))
            self._evictions += 1

    def _drop(self, key: _Key) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size

    # -- reading -------------------------------------------------------------------------------

    def get(
        self,
        name: dns.name.Name,
        rdtype: int,
        rdclass: int = dns.rdataclass.IN,
        *,
        min_trust: Trust = Trust.ANSWER,
        count: bool = True,
    ) -> CacheHit | None:
        """The cached answer for (name, rdtype, rdclass) with remaining TTLs, or None.

        `count=False` keeps the lookup out of the statistics (the resolver's own delegation and
        address lookups are not client questions).
        """
        now = self._clock()
        for key in ((name, _ANY_TYPE, rdclass), (name, rdtype, rdclass)):
            entry = self._live(key, now)
            if entry is not None and entry.trust >= min_trust:
                self._hits += count
                self._entries.move_to_end(key)
                remaining = int(entry.expires - now)
                if entry.kind is Kind.POSITIVE:
                    assert entry.rrset is not None
                    return CacheHit(Kind.POSITIVE, rrset=_with_ttl(entry.rrset, remaining), trust=entry.trust)
                assert entry.soa is not None
                return CacheHit(entry.kind, soa=_with_ttl(entry.soa, remaining), trust=entry.trust)
        self._misses += count
        return None

    def peek(self, name: dns.name.Name, rdtype: int, rdclass: int = dns.rdataclass.IN) -> bool:
        """Whether a live entry of any trust exists (no statistics, no LRU touch)."""
        return self._live((name, rdtype, rdclass), self._clock()) is not None

    def _live(self, key: _Key, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if int(entry.expires - now) <= 0:
            self._drop(key)
            return None
        return entry

    # -- housekeeping --------------------------------------------------------------------------

    def flush(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        return CacheStats(self._hits, self._misses, self._evictions, len(self._entries))
