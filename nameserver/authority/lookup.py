"""Authoritative lookup (RFC 1034 §4.3.2): pure and synchronous, over one zone-catalog snapshot.

`Authority(catalog).lookup(qname, qtype)` returns a typed `Lookup`:
- SUCCESS: the answer (a CNAME chain is followed through every zone we host);
- DELEGATION: a referral, NS in authority, glue in additional, AA clear;
- NAME_ERROR / NO_DATA: the zone's SOA in authority with the negative TTL of RFC 2308;
- REFUSED: the name is in no zone of ours.
QTYPE ANY gets one RRset (RFC 8482 §4.1), chosen as NSD 4 chooses it (`any_choice`), over UDP
and TCP alike. Wildcards follow RFC 4592 (a wildcard never matches a name that exists, empty non-terminals
included, and never below a cut); empty non-terminals answer NO_DATA.

Zones must be loaded non-relativized (`relativize=False`): every owner and rdata name absolute.
Each zone is indexed once per catalog (indexes of unchanged zones are reused on reload). Lookups
run on names as lower-cased wire bytes (`name_key`): a suffix is a slice, a dict probe hashes
bytes, and no `dns.name.Name` is built or compared on the way.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, NamedTuple, Union

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from common.names import name_wire
from nameserver.errors import NameserverError
from zones.catalog import ZoneCatalog

RdataType = dns.rdatatype.RdataType
MAX_CHAIN = 12
ADDRESS_TYPES = (RdataType.A, RdataType.AAAA)
TARGET_TYPES = frozenset({RdataType.NS, RdataType.MX, RdataType.SRV})
GLUE_MEMO_ENTRIES = 50_000
ANY_PREFERRED = frozenset({RdataType.A, RdataType.AAAA, RdataType.SOA, RdataType.MX, RdataType.PTR})
ANY_LAST = frozenset({RdataType.DNSKEY, RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3})


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


class _Step(NamedTuple):
    kind: Kind
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    target: dns.name.Name | None = None


QName = Union[dns.name.Name, Callable[[], dns.name.Name]]
"""A name, or a function that builds it when a lookup needs it (wildcards, CNAME chains)."""


def _as_name(name: QName) -> dns.name.Name:
    return name if isinstance(name, dns.name.Name) else name()


def name_key(name: dns.name.Name) -> bytes:
    """A name as lower-cased wire bytes: equal for names that DNS deems equal."""
    return name_wire(name).lower()


def _parent_key(key: bytes) -> bytes:
    return key[key[0] + 1 :]


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
    cut_keys: frozenset[bytes] = field(repr=False, default=frozenset())
    by_key: Mapping[bytes, Mapping[int, dns.rrset.RRset]] = field(repr=False, default_factory=dict)
    name_keys: frozenset[bytes] = field(repr=False, default=frozenset())
    origin_key: bytes = field(repr=False, default=b"")

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
            cut_keys=frozenset(name_key(c) for c in cuts),
            by_key={name_key(n): by_type for n, by_type in rrsets.items()},
            name_keys=frozenset(name_key(n) for n in names),
            origin_key=name_key(origin),
        )

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)

    def resolve(self, name: QName, qtype: int, key: bytes | None = None) -> _Step:
        """One step of RFC 1034 §4.3.2 inside this zone (no chasing across zones); `key` is
        `name_key(name)` when the caller has it."""
        if key is None:
            key = name_key(_as_name(name))
        if self.cut_keys:
            cut = self._cut_above(key, qtype)
            if cut is not None:
                return _Step(Kind.DELEGATION, authority=(self.by_key[cut][RdataType.NS],))
        node = self.by_key.get(key)
        if node is not None:
            return _from_node(name, node, qtype, synthesized=False)
        names = self.name_keys
        if key in names:
            return _Step(Kind.NO_DATA, authority=(self.negative_soa,))
        if self.has_wildcards:
            encloser = _parent_key(key)
            while encloser not in names:
                encloser = _parent_key(encloser)
            source = b"\x01*" + encloser
            wild = self.by_key.get(source)
            if wild is not None:
                return _from_node(name, wild, qtype, synthesized=True)
            if source in names:
                return _Step(Kind.NO_DATA, authority=(self.negative_soa,))
        return _Step(Kind.NAME_ERROR, authority=(self.negative_soa,))

    def _cut_above(self, key: bytes, qtype: int) -> bytes | None:
        """The highest delegation point at or above `key` (DS at the cut belongs to us)."""
        starts = []
        offset = 0
        stop = len(key) - len(self.origin_key)
        while offset < stop:
            starts.append(offset)
            offset += key[offset] + 1
        cuts = self.cut_keys
        for start in reversed(starts):
            suffix = key[start:]
            if suffix in cuts:
                if start == 0 and qtype == RdataType.DS:
                    return None
                return suffix
        return None


def any_choice(node: Mapping[int, dns.rrset.RRset]) -> dns.rrset.RRset:
    """The one RRset of a node that answers ANY (RFC 8482 §4.1: small, popular types first), as
    NSD 4 picks it: the first A, AAAA, SOA, MX or PTR in zone order; else the last RRset of another
    type; DNSKEY, RRSIG, NSEC and NSEC3 only when nothing else is there (then the last of them)."""
    preferred = next((rrset for rdtype, rrset in node.items() if rdtype in ANY_PREFERRED), None)
    if preferred is not None:
        return preferred
    others = [rrset for rdtype, rrset in node.items() if rdtype not in ANY_LAST] or list(node.values())
    return others[-1]


def _from_node(name: QName, node: Mapping[int, dns.rrset.RRset], qtype: int, synthesized: bool) -> _Step:
    if qtype == RdataType.ANY:
        return _Step(Kind.SUCCESS, answer=(_owned(name, any_choice(node), synthesized),))
    rrset = node.get(qtype)
    if rrset is not None:
        return _Step(Kind.SUCCESS, answer=(_owned(name, rrset, synthesized),))
    cname = node.get(RdataType.CNAME)
    if cname is not None:
        return _Step(Kind.SUCCESS, answer=(_owned(name, cname, synthesized),), target=cname[0].target)
    return _Step(Kind.NO_DATA)


def _owned(name: QName, rrset: dns.rrset.RRset, synthesized: bool) -> dns.rrset.RRset:
    """The RRset, or for a wildcard match a copy owned by the name asked for."""
    if not synthesized:
        return rrset
    copy = dns.rrset.RRset(_as_name(name), rrset.rdclass, rrset.rdtype)
    copy.update(rrset)
    return copy


class Authority:
    """Lookups over one `ZoneCatalog` snapshot."""

    def __init__(self, catalog: ZoneCatalog, previous: "Authority | None" = None) -> None:
        reuse = {id(ix.zone): ix for ix in previous.indexes.values()} if previous else {}
        self.catalog = catalog
        self.indexes: dict[dns.name.Name, ZoneIndex] = {}
        for origin, zone in catalog.zones.items():
            index = reuse.get(id(zone))
            self.indexes[origin] = index if index is not None else ZoneIndex.build(zone)
        self._by_key = {name_key(origin): index for origin, index in self.indexes.items()}
        self._glue_memo: dict[int, tuple[dns.rrset.RRset, tuple[tuple[bytes, tuple[dns.rrset.RRset, ...]], ...]]] = {}

    def find(self, qname: dns.name.Name, qtype: int = RdataType.A) -> ZoneIndex | None:
        """The deepest zone holding `qname` (for DS at a hosted child's apex: the parent)."""
        return self._find(name_key(qname), qtype)

    def _find(self, key: bytes, qtype: int) -> ZoneIndex | None:
        by_key = self._by_key
        offset = 0
        while True:
            suffix = key[offset:] if offset else key
            index = by_key.get(suffix)
            if index is not None:
                if qtype == RdataType.DS and offset == 0 and key != b"\x00":
                    parent = self._find(_parent_key(key), RdataType.A)
                    return parent if parent is not None else index
                return index
            if key[offset] == 0:
                return None
            offset += key[offset] + 1

    def lookup(self, qname: QName, qtype: int, qclass: int = dns.rdataclass.IN, key: bytes | None = None) -> Lookup:
        """The answer to (qname, qtype, qclass); `key` is `name_key(qname)` when the caller has it
        (then `qname` may be a function that builds the name, called only if it is needed)."""
        if qclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            return Lookup(Kind.REFUSED, authoritative=False)
        if key is None:
            key = name_key(_as_name(qname))
        index = self._find(key, qtype)
        if index is None:
            return Lookup(Kind.REFUSED, authoritative=False)
        answer: list[dns.rrset.RRset] = []
        chain: list[dns.name.Name] = []
        chain_keys: list[bytes] = []
        name: QName = qname
        current, zone = key, index
        while True:
            step = zone.resolve(name, qtype, current)
            answer.extend(step.answer)
            target = step.target
            if target is None or qtype == RdataType.CNAME or qtype == RdataType.ANY:
                break
            chain.append(_as_name(name))
            chain_keys.append(current)
            target_key = name_key(target)
            next_zone = self._find(target_key, qtype)
            if next_zone is None or len(chain) >= MAX_CHAIN or target_key in chain_keys or target_key == key:
                break  # the target is elsewhere (the resolver follows it) or the chain loops
            name, current, zone = target, target_key, next_zone
        kind = step.kind
        authority = step.authority
        if kind == Kind.NO_DATA and not authority:
            authority = (zone.negative_soa,)
        return Lookup(
            kind=kind,
            answer=tuple(answer),
            authority=authority,
            additional=self._additional(answer, authority),
            authoritative=kind != Kind.DELEGATION or bool(chain),
            zone=index.origin,
            chain=tuple(chain),
        )

    def _additional(
        self, answer: list[dns.rrset.RRset], authority: tuple[dns.rrset.RRset, ...]
    ) -> tuple[dns.rrset.RRset, ...]:
        """A/AAAA that we hold for NS, MX and SRV targets (glue for referrals), each once, and
        none that the answer already holds (address RRsets are the index's own objects)."""
        extra: list[dns.rrset.RRset] = []
        seen: set[bytes] = set()
        present: set[int] | None = None
        for rrset in (*answer, *authority):
            if rrset.rdtype not in TARGET_TYPES:
                continue
            for target, addresses in self._glue(rrset):
                if target in seen:
                    continue
                seen.add(target)
                if present is None:
                    present = {id(r) for r in answer}
                extra.extend(r for r in addresses if id(r) not in present)
        return tuple(extra)

    def _glue(self, rrset: dns.rrset.RRset) -> tuple[tuple[bytes, tuple[dns.rrset.RRset, ...]], ...]:
        """The targets of an NS/MX/SRV RRset with the address RRsets we hold for each (memoised
        per RRset object; the memo holds the RRset, so its id is not reused meanwhile)."""
        kept = self._glue_memo.get(id(rrset))
        if kept is not None and kept[0] is rrset:
            return kept[1]
        glue = tuple((name_key(target), tuple(self._addresses(target))) for target in _targets([rrset]))
        if len(self._glue_memo) >= GLUE_MEMO_ENTRIES:
            self._glue_memo.clear()
        self._glue_memo[id(rrset)] = (rrset, glue)
        return glue

    def _addresses(self, target: dns.name.Name) -> Iterator[dns.rrset.RRset]:
        key = name_key(target)
        index = self._find(key, RdataType.A)
        if index is None:
            return
        node = index.by_key.get(key)
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
