"""Authoritative lookup (RFC 1034 §4.3.2): pure and synchronous, over one zone-catalog snapshot.

`Authority(catalog).lookup(qname, qtype)` returns a typed `Lookup`:
- SUCCESS: the answer (a CNAME chain is followed through every zone we host);
- DELEGATION: a referral, NS in authority, glue in additional, AA clear;
- NAME_ERROR / NO_DATA: the zone's SOA in authority with the negative TTL of RFC 2308;
- REFUSED: the name is in no zone of ours.
Wildcards follow RFC 4592 (a wildcard never matches a name that exists, empty non-terminals
included, and never below a cut); empty non-terminals answer NO_DATA.

Zones must be loaded non-relativized (`relativize=False`): every owner and rdata name absolute.
Each zone is indexed once per catalog (indexes of unchanged zones are reused on reload).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from nameserver.errors import NameserverError
from zones.catalog import ZoneCatalog

RdataType = dns.rdatatype.RdataType
MAX_CHAIN = 12
ADDRESS_TYPES = (RdataType.A, RdataType.AAAA)


class Kind(enum.Enum):
    SUCCESS = "success"
    DELEGATION = "delegation"
    NAME_ERROR = "nxdomain"
    NO_DATA = "nodata"
    REFUSED = "refused"


@dataclass(frozen=True)
class Lookup:
    """The outcome of a lookup; `chain` lists the CNAME owners that were followed."""

    kind: Kind
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    authoritative: bool = True
    zone: dns.name.Name | None = None
    chain: tuple[dns.name.Name, ...] = ()


class ZoneIndexError(NameserverError):
    """A zone cannot be served as loaded."""


@dataclass(frozen=True)
class _Step:
    kind: Kind
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    target: dns.name.Name | None = None


@dataclass(frozen=True)
class ZoneIndex:
    """One zone, indexed for lookups: RRsets by name and type, every existing name, the cuts."""

    origin: dns.name.Name
    zone: dns.zone.Zone
    rrsets: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]
    names: frozenset[dns.name.Name]
    cuts: frozenset[dns.name.Name]
    has_wildcards: bool
    soa: dns.rrset.RRset
    negative_soa: dns.rrset.RRset
    ordered: tuple[dns.rrset.RRset, ...] = field(repr=False)
    cut_keys: frozenset[tuple[bytes, ...]] = field(repr=False, default=frozenset())

    @classmethod
    def build(cls, zone: dns.zone.Zone) -> "ZoneIndex":
        origin = zone.origin
        if origin is None or not origin.is_absolute() or zone.relativize:
            raise ZoneIndexError(f"zone {origin}: load it with relativize=False (absolute names)")
        rrsets: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        names: set[dns.name.Name] = {origin}
        ordered: list[dns.rrset.RRset] = []
        for name in sorted(zone.nodes):
            node = zone.nodes[name]
            by_type: dict[int, dns.rrset.RRset] = {}
            for rdataset in node.rdatasets:
                rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
                rrset.update(rdataset)
                ordered.append(rrset)
                if rdataset.covers == RdataType.NONE:
                    by_type[rdataset.rdtype] = rrset
            if not by_type:
                continue
            rrsets[name] = by_type
            ancestor = name
            while ancestor not in names and ancestor != dns.name.root:
                names.add(ancestor)
                ancestor = ancestor.parent()
        apex = rrsets.get(origin, {})
        soa = apex.get(RdataType.SOA)
        if soa is None:
            raise ZoneIndexError(f"zone {origin}: no SOA at the apex")
        negative = dns.rrset.RRset(origin, soa.rdclass, RdataType.SOA)
        negative.update(soa)
        negative.ttl = min(soa.ttl, soa[0].minimum)
        cuts = frozenset(n for n, by_type in rrsets.items() if n != origin and RdataType.NS in by_type)
        # SOA first; AXFR needs it first and last, lookups do not care about the order.
        ordered.sort(key=lambda r: (r.name != origin or r.rdtype != RdataType.SOA,))
        return cls(
            origin=origin,
            zone=zone,
            rrsets=rrsets,
            names=frozenset(names),
            cuts=cuts,
            has_wildcards=any(n.is_wild() for n in rrsets),
            soa=soa,
            negative_soa=negative,
            ordered=tuple(ordered),
            cut_keys=frozenset(_key(c) for c in cuts),
        )

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)

    def resolve(self, name: dns.name.Name, qtype: int) -> _Step:
        """One step of RFC 1034 §4.3.2 inside this zone (no chasing across zones)."""
        cut = self._cut_above(name, qtype)
        if cut is not None:
            return _Step(Kind.DELEGATION, authority=(self.rrsets[cut][RdataType.NS],))
        node = self.rrsets.get(name)
        if node is not None:
            return _from_node(name, node, qtype, synthesized=False)
        if name in self.names:
            return _Step(Kind.NO_DATA, authority=(self.negative_soa,))
        if self.has_wildcards:
            encloser = name.parent()
            while encloser not in self.names:
                encloser = encloser.parent()
            source = dns.name.Name((b"*",) + encloser.labels)
            wild = self.rrsets.get(source)
            if wild is not None:
                return _from_node(name, wild, qtype, synthesized=True)
            if source in self.names:
                return _Step(Kind.NO_DATA, authority=(self.negative_soa,))
        return _Step(Kind.NAME_ERROR, authority=(self.negative_soa,))

    def _cut_above(self, name: dns.name.Name, qtype: int) -> dns.name.Name | None:
        """The highest delegation point at or above `name` (DS at the cut belongs to us)."""
        if not self.cuts:
            return None
        labels = _key(name)
        size = len(labels)
        for start in range(size - len(self.origin) - 1, -1, -1):
            if labels[start:] in self.cut_keys:
                if start == 0 and qtype == RdataType.DS:
                    return None
                return dns.name.Name(name.labels[start:])
        return None


def _key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A name as lower-cased labels: cheap to slice and hash (no Name objects built)."""
    return tuple(label.lower() for label in name.labels)


def _from_node(
    name: dns.name.Name, node: Mapping[int, dns.rrset.RRset], qtype: int, synthesized: bool
) -> _Step:
    def owned(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
        if not synthesized:
            return rrset
        copy = dns.rrset.RRset(name, rrset.rdclass, rrset.rdtype)
        copy.update(rrset)
        return copy

    if qtype == RdataType.ANY:
        return _Step(Kind.SUCCESS, answer=tuple(owned(r) for r in node.values()))
    rrset = node.get(qtype)
    if rrset is not None:
        return _Step(Kind.SUCCESS, answer=(owned(rrset),))
    cname = node.get(RdataType.CNAME)
    if cname is not None:
        return _Step(Kind.SUCCESS, answer=(owned(cname),), target=cname[0].target)
    return _Step(Kind.NO_DATA)


class Authority:
    """Lookups over one `ZoneCatalog` snapshot."""

    def __init__(self, catalog: ZoneCatalog, previous: "Authority | None" = None) -> None:
        reuse = {id(ix.zone): ix for ix in previous.indexes.values()} if previous else {}
        self.catalog = catalog
        self.indexes: dict[dns.name.Name, ZoneIndex] = {}
        for origin, zone in catalog.zones.items():
            index = reuse.get(id(zone))
            self.indexes[origin] = index if index is not None else ZoneIndex.build(zone)

    def find(self, qname: dns.name.Name, qtype: int = RdataType.A) -> ZoneIndex | None:
        """The deepest zone holding `qname` (for DS at a hosted child's apex: the parent)."""
        name = qname
        while True:
            index = self.indexes.get(name)
            if index is not None:
                if qtype == RdataType.DS and name == qname and name != dns.name.root:
                    parent = self.find(name.parent())
                    return parent if parent is not None else index
                return index
            if len(name) <= 1:
                return None
            name = name.parent()

    def lookup(self, qname: dns.name.Name, qtype: int, qclass: int = dns.rdataclass.IN) -> Lookup:
        if qclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            return Lookup(Kind.REFUSED, authoritative=False)
        index = self.find(qname, qtype)
        if index is None:
            return Lookup(Kind.REFUSED, authoritative=False)
        answer: list[dns.rrset.RRset] = []
        chain: list[dns.name.Name] = []
        name, zone = qname, index
        while True:
            step = zone.resolve(name, qtype)
            answer.extend(step.answer)
            target = step.target
            if target is None or qtype in (RdataType.CNAME, RdataType.ANY):
                break
            chain.append(name)
            next_zone = self.find(target, qtype)
            if next_zone is None or len(chain) >= MAX_CHAIN or target in chain or target == qname:
                break  # the target is elsewhere (the resolver follows it) or the chain loops
            name, zone = target, next_zone
        kind = step.kind
        authority = step.authority
        if kind == Kind.NO_DATA and not authority:
            authority = (zone.negative_soa,)
        additional = self._additional(answer, authority)
        return Lookup(
            kind=kind,
            answer=tuple(answer),
            authority=authority,
            additional=additional,
            authoritative=kind != Kind.DELEGATION or bool(chain),
            zone=index.origin,
            chain=tuple(chain),
        )

    def _additional(self, answer: list[dns.rrset.RRset], authority: tuple[dns.rrset.RRset, ...]) -> tuple[dns.rrset.RRset, ...]:
        """A/AAAA that we hold for NS, MX and SRV targets (glue for referrals)."""
        present = {(r.name, r.rdtype) for r in answer}
        seen: set[dns.name.Name] = set()
        extra: list[dns.rrset.RRset] = []
        for target in _targets([*answer, *authority]):
            if target in seen:
                continue
            seen.add(target)
            for rrset in self._addresses(target):
                if (rrset.name, rrset.rdtype) not in present:
                    extra.append(rrset)
        return tuple(extra)

    def _addresses(self, target: dns.name.Name) -> Iterator[dns.rrset.RRset]:
        index = self.find(target)
        if index is None:
            return
        node = index.rrsets.get(target)
        if node is None:
            return
        for rdtype in ADDRESS_TYPES:
            rrset = node.get(rdtype)
            if rrset is not None:
                yield rrset


def _targets(rrsets: list[dns.rrset.RRset]) -> Iterator[dns.name.Name]:
    for rrset in rrsets:
        if rrset.rdtype in (RdataType.NS, RdataType.SRV):
            for rdata in rrset:
                yield rdata.target
        elif rrset.rdtype == RdataType.MX:
            for rdata in rrset:
                yield rdata.exchange
