"""Keeping the workers' catalogs equal to the main's: every `swap` of the main's store is told to
its subscribers (`PublishingStore`); what a worker lacks is sent as the zones that changed, each
pickled once however many workers take it (`CatalogFeed`); the worker applies them (`apply`).

    feed = CatalogFeed()
    update = feed.update(sent, store.current)      # sent: what this worker holds (None: nothing yet)
    catalog = apply(worker_catalog, pickle.loads(update))

A zone is "changed" when its object is not the one the worker was last sent (a catalog's zones never
change in place: reload, UPDATE, health and lease changes swap in new zone objects), so one UPDATE
ships one zone. The worker's unchanged zones stay the same objects, and so keep every index and
rendered answer built on them.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Callable, Mapping

import dns.name
import dns.zone

from zones.catalog import ZoneCatalog, ZoneStore


@dataclass
class PublishingStore(ZoneStore):
    """A `ZoneStore` that calls every subscriber after each swap (in the thread that swapped)."""

    subscribers: list[Callable[[], object]] = field(default_factory=list, compare=False, repr=False)

    def swap(self, catalog: ZoneCatalog) -> None:
        super().swap(catalog)
        for subscriber in self.subscribers:
            subscriber()


@dataclass(frozen=True)
class CatalogUpdate:
    """The zones to change in a worker's catalog, and the main's generation they bring it to."""

    generation: int
    whole: bool  # the catalog is exactly `zones` (the first update a worker gets)
    zones: Mapping[dns.name.Name, bytes | None]  # a pickled zone, or None: the zone is gone


class CatalogFeed:
    """Pickles of the current zones, made once and shared by every worker's update."""

    def __init__(self) -> None:
        self._pickles: dict[int, tuple[dns.zone.Zone, bytes]] = {}  # id(zone): (zone, pickle); holds the zone

    def update(self, sent: ZoneCatalog | None, current: ZoneCatalog) -> bytes:
        """The pickled `CatalogUpdate` that brings a worker holding `sent` to `current`."""
        before = sent.zones if sent is not None else {}
        changed: dict[dns.name.Name, bytes | None] = {
            origin: self._pickle(zone) for origin, zone in current.zones.items() if before.get(origin) is not zone
        }
        changed.update((origin, None) for origin in before if origin not in current.zones)
        self._forget(current)
        return pickle.dumps(CatalogUpdate(current.generation, sent is None, changed), pickle.HIGHEST_PROTOCOL)

    def _pickle(self, zone: dns.zone.Zone) -> bytes:
        known = self._pickles.get(id(zone))
        if known is not None and known[0] is zone:
            return known[1]
        data = pickle.dumps(zone, pickle.HIGHEST_PROTOCOL)
        self._pickles[id(zone)] = (zone, data)
        return data

    def _forget(self, current: ZoneCatalog) -> None:
        """Drop the pickles of zones no longer current (a slow worker may still get them re-made)."""
        live = {id(zone) for zone in current.zones.values()}
        for key in [k for k in self._pickles if k not in live]:
            del self._pickles[key]


def apply(catalog: ZoneCatalog, update: CatalogUpdate) -> ZoneCatalog:
    """`catalog` changed by `update` (zones it does not name stay the same objects)."""
    zones: dict[dns.name.Name, dns.zone.Zone] = {} if update.whole else dict(catalog.zones)
    for origin, data in update.zones.items():
        if data is None:
            zones.pop(origin, None)
        else:
            zones[origin] = pickle.loads(data)
    return ZoneCatalog(zones=zones, generation=update.generation)
