"""DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945): verifying, checking and applying one message.

    request -> verify TSIG with the server keyring -> key allowed for the zone? -> zone section
            -> prerequisites (§3.2) -> prescan (§3.4.1) -> the update policy, record by record
            -> apply to a copy of the zone (§3.4.2) -> caps -> bump the SOA serial -> journal
            -> swap the catalog -> NOERROR (signed)
            -> NOTIFY the secondaries (RFC 1996; `semdns serve --notify`), which fetch it by IXFR

Refusals (`errors.Refusal`, with the RCODE below) leave the zone untouched:
- no TSIG: REFUSED; unknown key: NOTAUTH + TSIG error BADKEY; bad MAC: NOTAUTH + BADSIG; signed
  more than 300 s from our time, or a replay: NOTAUTH + BADTIME (`zones.tsigguard`); a key not
  allowed in the zone: REFUSED + EDE 18. A key may send UPDATEs to the zone its name lies in
  (`engine.legal.semantic.root.`, or a key named exactly `legal.semantic.root.`, to
  `legal.semantic.root.`; make one with `semdns zone keygen engine.legal.semantic.root.`) and to
  zones its grants reach (`zones.update_policy`);
- zone section not one SOA question of a zone we host: NOTAUTH / FORMERR;
- an update RR outside the zone: NOTZONE; touching the SOA, or NS at the apex: REFUSED + EDE 18;
- prerequisites fail: NXDOMAIN / YXDOMAIN / NXRRSET / YXRRSET, as RFC 2136 §3.2;
- a record the update policy does not allow the key, or records past a cap: REFUSED + EDE 18
  with a text saying which record and why (`nameserver.update.authorize`).

The zone copy is copy-on-write: the new zone shares every node but the ones the update touches,
so an update costs what it changes. `nameserver.update.dynamic.DynamicZones` owns the journal,
leases and health state and applies what this module checks; `nameserver.update.handler` is the
chain's `update` slot: it only parses and answers.
"""
from __future__ import annotations

import copy
import datetime
import logging
from dataclasses import dataclass
from typing import Iterable

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.node
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update
import dns.zone

from common.names import zone_origin
from nameserver.errors import Refusal, TsigRefusal
from nameserver.update.registry import Record
from nameserver.wire import update_lease_from_wire
from zones.catalog import ZoneCatalog
from zones.tsigguard import TsigFailure, TsigGuard

log = logging.getLogger(__name__)

UPDATE_LEASE_OPTION = 2


@dataclass(frozen=True)
class Applied:
    """The outcome of applying an update: the new zone (None: nothing changed) and what changed."""

    zone: dns.zone.Zone | None
    added: tuple[Record, ...]
    removed: tuple[Record, ...]


# --- authentication ------------------------------------------------------------------------
def verify(wire: bytes, guard: TsigGuard) -> dns.update.UpdateMessage:
    """The UPDATE parsed and its TSIG checked by `guard` (`zones.tsigguard`: the server's fudge,
    the replay cache), or Refusal saying why not (`TsigRefusal`: answered with its TSIG error)."""
    try:
        message = guard.check(wire)
    except TsigFailure as failure:
        raise TsigRefusal(failure) from None
    except (dns.exception.DNSException, ValueError) as exc:
        raise Refusal(dns.rcode.FORMERR, f"unparsable UPDATE: {exc}") from None
    if not message.had_tsig:
        raise Refusal(dns.rcode.REFUSED, "UPDATE without a TSIG signature")
    if not isinstance(message, dns.update.UpdateMessage):
        raise Refusal(dns.rcode.FORMERR, "not an UPDATE message")
    return message


def key_may_update(keyname: dns.name.Name, origin: dns.name.Name, catalog: ZoneCatalog) -> bool:
    """A key's own zone: the one its name lies in (the deepest hosted zone enclosing the key's
    name), never an ancestor zone (whose delegations it could rewrite). There it has the engine
    rule (`nameserver.update.authorize`); anything more takes a grant."""
    zone = catalog.find(keyname)
    return zone is not None and zone.origin == origin


def lease_of(message: dns.message.Message) -> int | None:
    """The EDNS UPDATE-LEASE (draft-ietf-dnssd-update-lease) in seconds, or None."""
    for option in message.options:
        if option.otype == UPDATE_LEASE_OPTION:
            data = option.to_wire()
            lease = update_lease_from_wire(data)
            if lease is None:
                raise Refusal(dns.rcode.FORMERR, f"UPDATE-LEASE option of {len(data)} octets")
            return lease
    return None


# --- RFC 2136 §3.2: prerequisites ----------------------------------------------------------
def check_prerequisites(zone: dns.zone.Zone, message: dns.update.UpdateMessage) -> None:
    origin = zone_origin(zone)
    required: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], set[dns.rdata.Rdata]] = {}
    for rrset in message.prerequisite:
        name, rdtype = rrset.name, rrset.rdtype
        if rrset.ttl != 0:
            raise Refusal(dns.rcode.FORMERR, f"prerequisite {name} {dns.rdatatype.to_text(rdtype)}: TTL not 0")
        if not name.is_subdomain(origin):
            raise Refusal(dns.rcode.NOTZONE, f"prerequisite {name} is outside zone {origin}")
        node = zone.get_node(name)
        if rrset.deleting == dns.rdataclass.ANY:
            if rdtype == dns.rdatatype.ANY:
                if node is None or not len(node.rdatasets):
                    raise Refusal(dns.rcode.NXDOMAIN, f"prerequisite: {name} is not in use")
            elif zone.get_rdataset(name, rdtype) is None:
                raise Refusal(dns.rcode.NXRRSET, f"prerequisite: no {dns.rdatatype.to_text(rdtype)} at {name}")
        elif rrset.deleting == dns.rdataclass.NONE:
            if rdtype == dns.rdatatype.ANY:
                if node is not None and len(node.rdatasets):
                    raise Refusal(dns.rcode.YXDOMAIN, f"prerequisite: {name} is in use")
            elif zone.get_rdataset(name, rdtype) is not None:
                raise Refusal(dns.rcode.YXRRSET, f"prerequisite: {dns.rdatatype.to_text(rdtype)} at {name} exists")
        elif rrset.rdclass == zone.rdclass:
            required.setdefault((name, rdtype), set()).update(rrset)
        else:
            raise Refusal(dns.rcode.FORMERR, f"prerequisite {name}: bad class")
    for (name, rdtype), rdatas in required.items():
        have = zone.get_rdataset(name, rdtype)
        if have is None or set(have) != rdatas:
            raise Refusal(dns.rcode.NXRRSET, f"prerequisite: {dns.rdatatype.to_text(rdtype)} at {name} differs")


# --- RFC 2136 §3.4.1: prescan ----------------------------------------------------------------
def prescan(zone: dns.zone.Zone, updates: Iterable[dns.rrset.RRset]) -> None:
    origin = zone_origin(zone)
    for rrset in updates:
        name, rdtype = rrset.name, rrset.rdtype
        what = f"{name} {dns.rdatatype.to_text(rdtype)}"
        if not name.is_subdomain(origin):
            raise Refusal(dns.rcode.NOTZONE, f"{what} is outside zone {origin}")
        if rdtype == dns.rdatatype.SOA or (name == origin and rdtype == dns.rdatatype.NS):
            text = f"{what}: the SOA and the apex NS are not updatable"
            raise Refusal(dns.rcode.REFUSED, text, dns.edns.EDECode.PROHIBITED, text)
        if rrset.deleting is None:
            if rrset.rdclass != zone.rdclass or dns.rdatatype.is_metatype(rdtype):
                raise Refusal(dns.rcode.FORMERR, f"{what}: cannot add this class/type")
        elif rrset.deleting == dns.rdataclass.ANY:
            if rrset.ttl != 0 or len(rrset):
                raise Refusal(dns.rcode.FORMERR, f"{what}: delete with TTL or data")
        elif rrset.deleting == dns.rdataclass.NONE:
            if rrset.ttl != 0 or dns.rdatatype.is_metatype(rdtype):
                raise Refusal(dns.rcode.FORMERR, f"{what}: delete-RR with TTL or meta-type")
        else:
            raise Refusal(dns.rcode.FORMERR, f"{what}: bad class")


# --- RFC 2136 §3.4.2: apply to a copy ------------------------------------------------------
class Draft:
    """A copy-on-write copy of a zone: nodes are deep-copied only when first touched."""

    def __init__(self, zone: dns.zone.Zone) -> None:
        self.base = zone
        self.zone = dns.zone.Zone(zone.origin, zone.rdclass, relativize=zone.relativize)
        self.zone.nodes = dict(zone.nodes)
        self._copied: set[dns.name.Name] = set()
        self.added: list[Record] = []
        self.removed: list[Record] = []

    def _node(self, name: dns.name.Name, create: bool) -> dns.node.Node | None:
        nodes = self.zone.nodes
        if name not in self._copied:
            if name in nodes:
                nodes[name] = copy.deepcopy(nodes[name])
            elif not create:
                return None
            else:
                nodes[name] = self.zone.node_factory()
            self._copied.add(name)
        return nodes.get(name)

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        existing = self.zone.nodes.get(name)
        if existing is not None and _cname_conflict(existing, rdata, self.zone.rdclass):
            log.info("UPDATE: ignoring %s %s beside a CNAME (RFC 2136 §3.4.2.2)", name, rdata.rdtype.name)
            return
        current = self.zone.get_rdataset(name, rdata.rdtype)
        if current is not None and rdata in current and current.ttl == ttl:
            return
        node = self._node(name, create=True)
        assert node is not None
        rdataset = node.find_rdataset(self.zone.rdclass, rdata.rdtype, create=True)
        if len(rdataset) and rdataset.ttl != ttl:  # the new TTL applies to the whole RRset
            self.removed.extend((name, rdataset.ttl, old) for old in rdataset)
            self.added.extend((name, ttl, old) for old in rdataset if old != rdata)
        rdataset.ttl = ttl
        rdataset.add(rdata)
        self.added.append((name, ttl, rdata))

    def delete_rr(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> None:
        existing = self.zone.get_rdataset(name, rdata.rdtype)
        if existing is None or rdata not in existing:
            return
        node = self._node(name, create=False)
        assert node is not None
        rdataset = node.find_rdataset(self.zone.rdclass, rdata.rdtype)
        self.removed.append((name, rdataset.ttl, rdata))
        rdataset.discard(rdata)
        if not len(rdataset):
            node.delete_rdataset(self.zone.rdclass, rdata.rdtype)
        self._prune(name)

    def delete_rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> None:
        if self.zone.get_rdataset(name, rdtype) is None:
            return
        node = self._node(name, create=False)
        assert node is not None
        rdataset = node.find_rdataset(self.zone.rdclass, rdtype)
        self.removed.extend((name, rdataset.ttl, r) for r in rdataset)
        node.delete_rdataset(self.zone.rdclass, rdtype)
        self._prune(name)

    def delete_name(self, name: dns.name.Name) -> None:
        existing = self.zone.nodes.get(name)
        if existing is None:
            return
        keep = (dns.rdatatype.SOA, dns.rdatatype.NS) if name == self.zone.origin else ()
        for rdataset in list(existing.rdatasets):
            if rdataset.rdtype not in keep:
                self.delete_rrset(name, rdataset.rdtype)

    def bump_serial(self, now: datetime.date | None = None) -> int:
        """Raise the SOA serial: YYYYMMDD00 of today, or old + 1 when that is not higher."""
        node = self._node(zone_origin(self.zone), create=False)
        assert node is not None
        soa_set = node.find_rdataset(self.zone.rdclass, dns.rdatatype.SOA)
        soa = soa_set[0]
        today = int((now or datetime.datetime.now(datetime.timezone.utc).date()).strftime("%Y%m%d")) * 100
        serial = (soa.serial + 1) % (1 << 32)
        if _serial_gt(today, soa.serial):
            serial = today
        soa_set.discard(soa)
        soa_set.add(soa.replace(serial=serial))
        return serial

    def _prune(self, name: dns.name.Name) -> None:
        node = self.zone.nodes.get(name)
        if node is not None and not len(node.rdatasets) and name != self.zone.origin:
            del self.zone.nodes[name]
            self._copied.discard(name)  # a later add in the same UPDATE makes the node anew

    def result(self) -> Applied:
        added = tuple(r for r in self.added if r not in self.removed)
        removed = tuple(r for r in self.removed if r not in self.added)
        if not added and not removed:
            return Applied(zone=None, added=(), removed=())
        self.bump_serial()
        return Applied(zone=self.zone, added=added, removed=removed)


def apply_updates(zone: dns.zone.Zone, updates: Iterable[dns.rrset.RRset],
                  hidden: frozenset[Record] = frozenset()) -> Applied:
    """The update section applied to a copy of `zone` (which stays unchanged).

    Records in `hidden` (registered engines that are currently unhealthy) are not added; the
    caller keeps them registered and adds them back when they recover.
    """
    draft = Draft(zone)
    for rrset in updates:
        if rrset.deleting is None:
            for rdata in rrset:
                if (rrset.name, rrset.ttl, rdata) not in hidden:
                    draft.add(rrset.name, rrset.ttl, rdata)
        elif rrset.deleting == dns.rdataclass.ANY:
            if rrset.rdtype == dns.rdatatype.ANY:
                draft.delete_name(rrset.name)
            else:
                draft.delete_rrset(rrset.name, rrset.rdtype)
        else:
            for rdata in rrset:
                draft.delete_rr(rrset.name, rdata)
    return draft.result()


def _cname_conflict(node: dns.node.Node, rdata: dns.rdata.Rdata, rdclass: dns.rdataclass.RdataClass) -> bool:
    """RFC 2136 §3.4.2.2: no CNAME beside other data, no other data beside a CNAME."""
    if rdata.rdtype == dns.rdatatype.CNAME:
        other = (dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC)
        return any(r.rdtype not in other for r in node.rdatasets)
    return node.get_rdataset(rdclass, dns.rdatatype.CNAME) is not None


def _serial_gt(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: a > b."""
    return a != b and ((a - b) % (1 << 32)) < (1 << 31)
