"""The zones that dynamic UPDATEs change: applied, journaled, announced, and their registrations.

`DynamicZones` applies an UPDATE that `nameserver.update.apply` verified and checked to a copy of the
zone, journals it (`nameserver.update.journal`), swaps the catalog and tells `on_change` (the runner sends
NOTIFY); it also tracks registrations (leases) and shows or hides records for the health monitor.
"""
from __future__ import annotations

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

from nameserver.errors import Refusal
from nameserver.update.apply import Applied, apply_updates, check_prerequisites, key_may_update, lease_of, prescan
from nameserver.update.journal import Journal
from nameserver.update.registry import Record, Registry
from zones.catalog import ZoneStore

log = logging.getLogger(__name__)


class DynamicZones:
    """Applies accepted UPDATEs to the served catalog, journals them, tracks registrations.

    Every change is computed and swapped in without an `await` in between, so concurrent
    UPDATEs apply one after the other, each to the catalog the previous one left.
    """

    def __init__(self, store: ZoneStore, keyring: dict[dns.name.Name, dns.tsig.Key],
                 journal: Journal | None = None, registry: Registry | None = None,
                 on_change: Callable[[dns.name.Name], object] | None = None) -> None:
        self.store = store
        self.keyring = keyring
        self.journal = journal
        self.registry = registry if registry is not None else Registry()
        self.on_change = on_change  # told of every journaled change (the runner sends NOTIFY)

    async def update(self, message: dns.update.UpdateMessage) -> None:
        """Check and apply a verified UPDATE (raises Refusal; nothing changes then)."""
        if len(message.zone) != 1 or message.zone[0].rdtype != dns.rdatatype.SOA:
            raise Refusal(dns.rcode.FORMERR, "the zone section must hold one SOA question")
        origin = message.zone[0].name
        zone = self.store.current.zones.get(origin)
        if zone is None:
            raise Refusal(dns.rcode.NOTAUTH, f"{origin} is not a zone of this server")
        assert message.keyname is not None  # verify() refuses an UPDATE without TSIG
        if not key_may_update(message.keyname, origin, self.store.current):
            raise Refusal(dns.rcode.REFUSED, f"key {message.keyname} may not update {origin}")
        check_prerequisites(zone, message)
        prescan(zone, message.update)
        self.apply(origin, message.update, lease_of(message), journal=True)

    def apply(self, origin: dns.name.Name, updates: Sequence[dns.rrset.RRset], lease: int | None,
              journal: bool = False) -> Applied:
        """Apply to the current zone of `origin`, note registrations, journal a change, swap the
        catalog, tell `on_change` (a journaled change: an UPDATE or an expired lease, not a replay).

        Only changes are journaled (a lease renewal that changes nothing is not), and the journal
        line is on disk before the new catalog is served.
        """
        self.registry.note(origin, updates, lease, time.monotonic())
        zone = self.store.current.zones[origin]
        applied = apply_updates(zone, updates, hidden=self.registry.hidden_records(origin))
        if applied.zone is not None:
            if journal and self.journal is not None:
                self.journal.append(origin, updates, lease)
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
        for origin in self.journal.origins():
            if origin not in self.store.current.zones:
                log.warning("journal of %s: zone no longer served; ignored", origin)
                continue
            for entry in self.journal.entries(origin):
                self.apply(origin, entry.updates, entry.lease)
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
