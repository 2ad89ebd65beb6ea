"""The zones that dynamic UPDATEs change: applied, journaled, announced, and their registrations.

`DynamicZones` applies an UPDATE that `nameserver.update.apply` verified and checked to a copy of the
zone, journals it (`nameserver.update.journal`), swaps the catalog and tells `on_change` (the runner sends
NOTIFY); it also tracks registrations (leases) and shows or hides records for the health monitor.

Before anything changes, the update policy decides (`nameserver.update.authorize`: grants, the
engine rule, caps), and a registration (an UPDATE with a lease) whose engine would be probed at
an address outside `probe_allow` (`semdns serve --health-probe-allow`, default loopback) is
REFUSED: a key holder cannot make the server send requests to any address it likes.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from typing import Callable, Iterable, Sequence

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update

from nameserver.config import LOOPBACK, IPNetwork
from nameserver.errors import Refusal
from nameserver.update.apply import Applied, apply_updates, check_prerequisites, key_may_update, lease_of, prescan
from nameserver.update.authorize import Authorizer, check_caps, refused
from nameserver.update.journal import Journal
from nameserver.update.owners import Owners
from nameserver.update.registry import Record, Registration, Registry
from zones.catalog import ZoneStore
from zones.update_policy import UpdatePolicy

log = logging.getLogger(__name__)


class DynamicZones:
    """Applies accepted UPDATEs to the served catalog, journals them, tracks registrations.

    Every change is computed and swapped in without an `await` in between, so concurrent
    UPDATEs apply one after the other, each to the catalog the previous one left.
    """

    def __init__(self, store: ZoneStore, keyring: dict[dns.name.Name, dns.tsig.Key],
                 journal: Journal | None = None, registry: Registry | None = None,
                 on_change: Callable[[dns.name.Name], object] | None = None,
                 policy: UpdatePolicy | None = None, probe_allow: tuple[IPNetwork, ...] = LOOPBACK) -> None:
        self.store = store
        self.keyring = keyring
        self.journal = journal
        self.registry = registry if registry is not None else Registry()
        self.on_change = on_change  # told of every journaled change (the runner sends NOTIFY)
        self.policy = policy if policy is not None else UpdatePolicy()
        self.probe_allow = probe_allow  # addresses the health monitor may probe
        self.owners = Owners()

    async def update(self, message: dns.update.UpdateMessage) -> None:
        """Check and apply a verified UPDATE (raises Refusal; nothing changes then)."""
        if len(message.zone) != 1 or message.zone[0].rdtype != dns.rdatatype.SOA:
            raise Refusal(dns.rcode.FORMERR, "the zone section must hold one SOA question")
        origin = message.zone[0].name
        zone = self.store.current.zones.get(origin)
        if zone is None:
            raise Refusal(dns.rcode.NOTAUTH, f"{origin} is not a zone of this server")
        key = message.keyname
        assert key is not None  # verify() refuses an UPDATE without TSIG
        own = key_may_update(key, origin, self.store.current)
        engine = own or origin in self.policy.engine_zones(key)
        if not engine and not self.policy.touches(key, origin):
            raise refused(f"key {key} may not update {origin}")
        check_prerequisites(zone, message)
        prescan(zone, message.update)
        Authorizer(self.policy, key, zone, self.owners.of(origin), engine).check(message.update)
        lease = lease_of(message)
        self.check_probes(message.update, lease)
        self.apply(origin, message.update, lease, journal=True, key=key, enforce=True)

    def check_probes(self, updates: Sequence[dns.rrset.RRset], lease: int | None) -> None:
        """Refuse a registration whose engine the health monitor would probe outside `probe_allow`."""
        if lease is None:
            return
        added = frozenset((r.name, r.ttl, rdata) for r in updates if r.deleting is None for rdata in r)
        for address, port in Registration(dns.name.root, added, lease, 0.0).endpoints():
            if not self.may_probe(address):
                raise refused(f"the engine at {address} port {port} would be health-probed, and {address} is "
                              "neither loopback nor in --health-probe-allow")

    def may_probe(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.probe_allow)

    def apply(self, origin: dns.name.Name, updates: Sequence[dns.rrset.RRset], lease: int | None,
              journal: bool = False, key: dns.name.Name | None = None, enforce: bool = False) -> Applied:
        """Apply to the current zone of `origin`, note registrations and owners, journal a change,
        swap the catalog, tell `on_change` (a journaled change: an UPDATE or an expired lease, not a
        replay). `enforce`: refuse (before anything changes) what would grow past the caps.

        Only changes are journaled (a lease renewal that changes nothing is not), and the journal
        line is on disk before the new catalog is served.
        """
        zone = self.store.current.zones[origin]
        applied = apply_updates(zone, updates, hidden=self.registry.hidden_records(origin))
        owners_before = dict(self.owners.of(origin))
        if applied.zone is not None:
            self.owners.note(origin, zone, applied.zone, applied.added, applied.removed, key)
            if enforce and key is not None:
                try:
                    check_caps(self.policy, key, origin, zone, applied.zone, owners_before, self.owners.of(origin))
                except Refusal:
                    self.owners.by_zone[origin] = owners_before
                    raise
        self.registry.note(origin, updates, lease, time.monotonic())
        if applied.zone is not None:
            if journal and self.journal is not None:
                self.journal.append(origin, updates, lease, key)
            self.store.swap(self.store.current.replacing({origin: applied.zone}))
            log.info("UPDATE %s: +%d -%d records, serial %d", origin, len(applied.added), len(applied.removed),
                     applied.zone.find_rdataset(origin, dns.rdatatype.SOA)[0].serial)
            if journal and self.on_change is not None:
                self.on_change(origin)
        return applied

    def replay(self) -> int:
        """Re-apply the journal of every served zone; leases restart from now. Returns entries applied."""
        if self.journal is None:
            return 0
        count = 0
        self.owners = Owners()
        for origin in self.journal.origins():
            if origin not in self.store.current.zones:
                log.warning("journal of %s: zone no longer served; ignored", origin)
                continue
            for entry in self.journal.entries(origin):
                self.apply(origin, entry.updates, entry.lease, key=entry.key)
                count += 1
        log.info("journal: %d registration updates replayed", count)
        return count

    def set_visible(self, origin: dns.name.Name, records: Iterable[Record], visible: bool) -> None:
        """Show or hide records in the served zone without changing the registrations (health)."""
        updates = [_rrset(name, ttl, rdata, None if visible else dns.rdataclass.NONE) for name, ttl, rdata in records]
        if origin in self.store.current.zones:
            zone = self.store.current.zones[origin]
            applied = apply_updates(zone, updates)
            if applied.zone is not None:
                self.store.swap(self.store.current.replacing({origin: applied.zone}))

    def withdraw(self, origin: dns.name.Name, records: Iterable[Record]) -> None:
        """Delete records for good (an expired lease), journaled like an UPDATE."""
        if origin in self.store.current.zones:
            updates = [_rrset(name, 0, rdata, dns.rdataclass.NONE) for name, _ttl, rdata in records]
            self.apply(origin, updates, None, journal=True)


def _rrset(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata,
           deleting: dns.rdataclass.RdataClass | None) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdata.rdclass, rdata.rdtype, deleting=deleting)
    rrset.add(rdata, 0 if deleting is not None else ttl)
    return rrset
