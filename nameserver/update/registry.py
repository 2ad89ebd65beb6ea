"""The registrations of engines (the records one leased UPDATE adds) and their health state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

Record = tuple[dns.name.Name, int, dns.rdata.Rdata]
"""(owner, ttl, rdata): one resource record."""
MIN_LEASE = 5
MAX_LEASE = 24 * 3600


@dataclass
class Registration:
    origin: dns.name.Name
    records: frozenset[Record]
    lease: int
    expires: float
    failures: int = 0
    hidden: bool = False
    unprobed: bool = False  # some address is outside the probe ranges (logged once)

    @property
    def srv_records(self) -> tuple[tuple[dns.name.Name, int, dns.rdtypes.IN.SRV.SRV], ...]:
        return tuple(
            (name, ttl, rdata) for name, ttl, rdata in self.records if isinstance(rdata, dns.rdtypes.IN.SRV.SRV)
        )

    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """(address, port) of every SRV target with an address in this registration."""
        out = []
        for _name, _ttl, srv in self.srv_records:
            for owner, _t, rdata in self.records:
                if owner == srv.target and isinstance(rdata, (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA)):
                    out.append((rdata.address, srv.port))
        return tuple(sorted(set(out)))


@dataclass
class Registry:
    """The live registrations, keyed by (zone, records)."""

    registrations: dict[tuple[dns.name.Name, frozenset[Record]], Registration] = field(default_factory=dict)

    def note(self, origin: dns.name.Name, updates: Sequence[dns.rrset.RRset], lease: int | None, now: float) -> None:
        """Record the registrations and withdrawals an UPDATE makes."""
        added = frozenset((r.name, r.ttl, rdata) for r in updates if r.deleting is None for rdata in r)
        if lease is not None and any(rec[2].rdtype == dns.rdatatype.SRV for rec in added):
            lease = max(MIN_LEASE, min(MAX_LEASE, lease))
            key = (origin, added)
            current = self.registrations.get(key)
            if current is None:
                self.registrations[key] = Registration(origin, added, lease, now + lease)
            else:
                current.lease, current.expires = lease, now + lease
        deleted_rrs = {(r.name, rdata) for r in updates if r.deleting == dns.rdataclass.NONE for rdata in r}
        deleted_sets = {(r.name, r.rdtype) for r in updates if r.deleting == dns.rdataclass.ANY}
        for key, registration in list(self.registrations.items()):
            if key[0] != origin:
                continue
            for name, _ttl, rdata in registration.srv_records:
                if ((name, rdata) in deleted_rrs or (name, rdata.rdtype) in deleted_sets
                        or (name, dns.rdatatype.ANY) in deleted_sets):
                    del self.registrations[key]
                    break

    def hidden_records(self, origin: dns.name.Name) -> frozenset[Record]:
        return frozenset(r for reg in self.registrations.values() if reg.origin == origin and reg.hidden
                         for r in reg.srv_records)

    def expired(self, now: float) -> list[Registration]:
        return [reg for reg in self.registrations.values() if reg.expires <= now]

    def drop(self, registration: Registration) -> None:
        self.registrations.pop((registration.origin, registration.records), None)

    def __iter__(self):
        return iter(list(self.registrations.values()))
