"""The set of zones a server is authoritative for, and the holder that swaps it atomically.

`ZoneCatalog` is an immutable snapshot: origin -> dnspython zone. `ZoneStore` holds the current
snapshot; reload and UPDATE build a new snapshot and swap the reference in one assignment, so a
request always sees one consistent catalog (read `store.current` once per request). Every swap
also feeds the store's `history` (`zones.history`): the differences IXFR sends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

import dns.name
import dns.zone

from zones.history import ZoneHistory
from zones.source import ZoneSource

T = TypeVar("T")


@dataclass(frozen=True)
class ZoneCatalog:
    """An immutable set of zones; `generation` rises with every swap (cache keys use it).

    `sources` remembers the files each zone was loaded from (set by `zones.loader`), so that
    `zones.reload` re-reads only what changed; zones built in memory have no source.
    """

    zones: Mapping[dns.name.Name, dns.zone.Zone]
    generation: int = 0
    # Derived lookups memoised for this snapshot's lifetime (a catalog's zones never change in
    # place: reload and UPDATE swap in a new catalog). See `memo`.
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, kind: str, key: object, compute: Callable[[], T], limit: int = 4096) -> T:
        """`compute()`, remembered per (kind, key) while this catalog is current (bounded)."""
        slot = (kind, key)
        try:
            return self._memo[slot]
        except KeyError:
            value = compute()
            if len(self._memo) < limit:
                self._memo[slot] = value
            return value
    sources: Mapping[dns.name.Name, ZoneSource] = field(default_factory=dict)

    def find(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        """The deepest zone whose origin encloses `qname`, or None when no zone does."""
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root or len(name) == 0:
                return None
            name = name.parent()

    def replacing(self, updates: Mapping[dns.name.Name, dns.zone.Zone]) -> "ZoneCatalog":
        """A new catalog with `updates` swapped in (other zones shared, not copied)."""
        merged = dict(self.zones)
        merged.update(updates)
        return ZoneCatalog(zones=merged, generation=self.generation + 1, sources=self.sources)


@dataclass
class ZoneStore:
    """The server's current catalog. Swap with `swap`; read `current` once per request.

    `history` keeps the differences between zone versions that swaps brought (for IXFR).
    """

    current: ZoneCatalog = field(default_factory=lambda: ZoneCatalog(zones={}))
    history: ZoneHistory = field(default_factory=ZoneHistory, compare=False, repr=False)

    def swap(self, catalog: ZoneCatalog) -> None:
        previous, self.current = self.current, catalog
        self.history.record(previous.zones, catalog.zones)
