"""The recent versions of each zone as differences, for incremental zone transfer (IXFR, RFC 1995).

No I/O: zones in, differences out.

    history = ZoneHistory()                       # ZoneStore owns one; its swap() feeds it
    history.record(old_zones, new_zones)          # origin -> zone mappings, before and after
    steps = history.steps(origin, 2026112301, 2026112303)  # (diff 01->02, diff 02->03) or None

A difference is recorded whenever a zone's object changes and its SOA serial rises (RFC 1982
arithmetic): a reload of an edited zonefile, an UPDATE, a health change. Any other change (same or
lower serial, a zone that appears or disappears) clears that zone's history, so a path of steps
always leads from a serial to exactly the zone that serial now stands for.

Bound, per zone: at most `max_versions` differences (default 64), and the oldest are dropped once
the octets they carry (deletions + additions + the SOA pair of each step, counted as uncompressed
wire RRs) exceed `max_ratio` times the octets of the zone's current version (default 3). Octets,
not record counts, because records differ a thousandfold in size here. The default is sized for a
retrain: `semdns codec train` rewrites the whole `_codec` library (every old 8 KiB chunk deleted,
every new one added), a difference of about twice the zone, and that change still goes out as
IXFR, as Knot or NSD would send it from their journals (BIND's `max-ixfr-ratio 100%` would send
the zone instead; `max_ratio=1.0` does the same here). Edits of routing profiles or engine
records, and UPDATEs, are small differences.
The history lives in memory only: after a restart, clients get one full transfer.
"""
from __future__ import annotations

import functools
import logging
from collections import deque
from dataclasses import dataclass
from typing import Iterator, Mapping

import dns.name
import dns.node
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.serial
import dns.zone

from common.names import name_wire, zone_origin

log = logging.getLogger(__name__)

MAX_VERSIONS = 64
MAX_RATIO = 3.0
SOA_PAIR = 2  # each step carries its old and new SOA
RR_FIXED = 10  # type, class, TTL, rdata length

Zones = Mapping[dns.name.Name, dns.zone.Zone]


@dataclass(frozen=True)
class ZoneDiff:
    """One step from a zone version to the next: the SOAs of both and the records in between.

    `deleted` and `added` are RRsets in canonical name order, without the SOA (the SOAs frame
    the step, as in an IXFR). A TTL change deletes the whole RRset and adds it back.
    """

    old_soa: dns.rrset.RRset
    new_soa: dns.rrset.RRset
    deleted: tuple[dns.rrset.RRset, ...]
    added: tuple[dns.rrset.RRset, ...]

    @property
    def from_serial(self) -> int:
        return self.old_soa[0].serial

    @property
    def to_serial(self) -> int:
        return self.new_soa[0].serial

    @property
    def records(self) -> int:
        """Records the step carries in a transfer (its SOA pair included)."""
        return SOA_PAIR + sum(len(r) for r in self.deleted) + sum(len(r) for r in self.added)

    @functools.cached_property
    def octets(self) -> int:
        """What the step weighs in a transfer (uncompressed wire RRs, its SOA pair included)."""
        return (rrset_octets(self.old_soa) + rrset_octets(self.new_soa)
                + sum(rrset_octets(r) for r in self.deleted) + sum(rrset_octets(r) for r in self.added))


def soa_rrset(zone: dns.zone.Zone) -> dns.rrset.RRset | None:
    """The apex SOA of `zone` as an RRset, or None."""
    origin = zone_origin(zone)
    rdataset = zone.get_rdataset(origin, dns.rdatatype.SOA)
    if rdataset is None or not len(rdataset):
        return None
    rrset = dns.rrset.RRset(origin, rdataset.rdclass, dns.rdatatype.SOA)
    rrset.update(rdataset)
    return rrset


def rrset_octets(rrset: dns.rdataset.Rdataset, name: dns.name.Name | None = None) -> int:
    """The RRs' uncompressed wire size: owner, type/class/TTL/length (10 octets) and rdata each."""
    owner = len(name_wire(name if name is not None else rrset.name))  # type: ignore[attr-defined]
    return sum(owner + RR_FIXED + len(rdata.to_wire()) for rdata in rrset)


def zone_octets(zone: dns.zone.Zone) -> int:
    """The uncompressed wire size of every RR of `zone` (a full transfer, the SOA once)."""
    return sum(rrset_octets(rdataset, name) for name, node in zone.nodes.items() for rdataset in node.rdatasets)


def serial_rose(old: int, new: int) -> bool:
    """RFC 1982: `new` is greater than `old`."""
    return dns.serial.Serial(new) > dns.serial.Serial(old)


def diff_zones(old: dns.zone.Zone, new: dns.zone.Zone) -> ZoneDiff:
    """What turns `old` into `new` (same origin, absolute names, both with an SOA).

    Nodes the two zones share (an UPDATE's copy-on-write zone shares every node it did not touch)
    are skipped without being read, so the cost is that of the change, plus one dict lookup per name.
    """
    old_soa, new_soa = soa_rrset(old), soa_rrset(new)
    if old_soa is None or new_soa is None:
        raise ValueError(f"zone {new.origin}: cannot diff a version without an SOA")
    deleted: list[dns.rrset.RRset] = []
    added: list[dns.rrset.RRset] = []
    changed = [name for name in old.nodes.keys() | new.nodes.keys() if old.nodes.get(name) is not new.nodes.get(name)]
    for name in sorted(changed):
        before, after = old.nodes.get(name), new.nodes.get(name)
        for gone, came in _rdataset_pairs(before, after):
            rdtype = (gone if gone is not None else came).rdtype  # type: ignore[union-attr]
            if name == new.origin and rdtype == dns.rdatatype.SOA:
                continue
            _diff_rdatasets(name, gone, came, deleted, added)
    return ZoneDiff(old_soa, new_soa, tuple(deleted), tuple(added))


def _rdataset_pairs(
    before: dns.node.Node | None, after: dns.node.Node | None
) -> Iterator[tuple[dns.rdataset.Rdataset | None, dns.rdataset.Rdataset | None]]:
    """(old, new) rdatasets of one name, matched on (class, type, covers); either may be None."""
    old = {(r.rdclass, r.rdtype, r.covers): r for r in (before.rdatasets if before is not None else ())}
    new = {(r.rdclass, r.rdtype, r.covers): r for r in (after.rdatasets if after is not None else ())}
    for key in sorted(old.keys() | new.keys()):
        yield old.get(key), new.get(key)


def _diff_rdatasets(
    name: dns.name.Name,
    gone: dns.rdataset.Rdataset | None,
    came: dns.rdataset.Rdataset | None,
    deleted: list[dns.rrset.RRset],
    added: list[dns.rrset.RRset],
) -> None:
    old_rdatas = set(gone) if gone is not None else set()
    new_rdatas = set(came) if came is not None else set()
    if gone is not None and came is not None and gone.ttl != came.ttl:
        removed, kept = old_rdatas, new_rdatas  # the TTL is the RRset's: replace it whole
    else:
        removed, kept = old_rdatas - new_rdatas, new_rdatas - old_rdatas
    if removed:
        assert gone is not None
        deleted.append(_rrset(name, gone, removed))
    if kept:
        assert came is not None
        added.append(_rrset(name, came, kept))


def _rrset(name: dns.name.Name, like: dns.rdataset.Rdataset, rdatas: set) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, like.rdclass, like.rdtype, like.covers)
    for rdata in like:  # keep the zone's order among the chosen records
        if rdata in rdatas:
            rrset.add(rdata, like.ttl)
    return rrset


class ZoneHistory:
    """Bounded per-zone chains of `ZoneDiff`s, each chain ending at the zone's current version."""

    def __init__(self, max_versions: int = MAX_VERSIONS, max_ratio: float = MAX_RATIO) -> None:
        if max_versions < 0 or max_ratio < 0:
            raise ValueError("ZoneHistory: max_versions and max_ratio must not be negative")
        self.max_versions = max_versions
        self.max_ratio = max_ratio
        self._chains: dict[dns.name.Name, deque[ZoneDiff]] = {}
        self._octets: dict[dns.name.Name, int] = {}
        self._sizes: dict[dns.name.Name, tuple[dns.zone.Zone, int]] = {}  # the current version's octets

    def record(self, old: Zones, new: Zones) -> None:
        """Note what changed between two catalogs' zones (call it on every swap)."""
        for origin in old.keys() | new.keys():
            before, after = old.get(origin), new.get(origin)
            if before is after:
                continue
            if before is None or after is None:
                self.forget(origin)
                continue
            self._step(origin, before, after)

    def _step(self, origin: dns.name.Name, before: dns.zone.Zone, after: dns.zone.Zone) -> None:
        old_soa, new_soa = soa_rrset(before), soa_rrset(after)
        if old_soa is None or new_soa is None or not serial_rose(old_soa[0].serial, new_soa[0].serial):
            if self._chains.get(origin):
                log.info("zone %s changed without a serial rise: IXFR history cleared", origin)
            self.forget(origin)
            return
        diff = diff_zones(before, after)
        chain = self._chains.setdefault(origin, deque())
        chain.append(diff)
        total = self._octets.get(origin, 0) + diff.octets
        budget = self.max_ratio * self._size(origin, before, after, diff)
        while chain and (len(chain) > self.max_versions or total > budget):
            total -= chain.popleft().octets
        self._octets[origin] = total
        log.debug("zone %s: IXFR history %d -> %d (%d records, %d octets), %d step(s) kept",
                  origin, diff.from_serial, diff.to_serial, diff.records, diff.octets, len(chain))

    def _size(self, origin: dns.name.Name, before: dns.zone.Zone, after: dns.zone.Zone, diff: ZoneDiff) -> int:
        """The octets of `after`: from those of `before` and the diff when known, else counted."""
        known = self._sizes.get(origin)
        if known is not None and known[0] is before:
            size = known[1] + sum(rrset_octets(r) for r in diff.added) - sum(rrset_octets(r) for r in diff.deleted)
            size += rrset_octets(diff.new_soa) - rrset_octets(diff.old_soa)
        else:
            size = zone_octets(after)
        self._sizes[origin] = (after, size)
        return size

    def forget(self, origin: dns.name.Name) -> None:
        """Drop the history of `origin` (clients at older serials then get a full transfer)."""
        self._chains.pop(origin, None)
        self._octets.pop(origin, None)
        self._sizes.pop(origin, None)

    def steps(self, origin: dns.name.Name, from_serial: int, to_serial: int) -> tuple[ZoneDiff, ...] | None:
        """The differences leading from `from_serial` to `to_serial`, oldest first; None when the
        history holds no such path (serial unknown, too old, or the chain ends elsewhere)."""
        chain = self._chains.get(origin)
        if not chain or chain[-1].to_serial != to_serial:
            return None
        for start in range(len(chain) - 1, -1, -1):
            if chain[start].from_serial == from_serial:
                return tuple(chain[i] for i in range(start, len(chain)))
        return None

    def serials(self, origin: dns.name.Name) -> tuple[int, ...]:
        """The serials a client may hold and still get an incremental transfer, oldest first."""
        return tuple(diff.from_serial for diff in self._chains.get(origin, ()))
