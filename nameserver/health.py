"""Registered engines: their leases and their health, and how both shape the SRV answers.

A *registration* is the set of records one UPDATE with an UPDATE-LEASE option adds (an engine
re-sends the same UPDATE to renew, which refreshes the lease). `HealthMonitor` probes every
registration's `http://<address>:<port>/health` (address from the A/AAAA of the SRV target in
the same registration) each `interval` seconds:
- `failures` failed probes in a row (no answer within `timeout`, or a status other than 200)
  hide the registration's SRV records from the served zone; one good probe shows them again;
- a lease not renewed in time withdraws every record of the registration (journaled).

Documented bound: an engine that dies leaves the SRV answers within
`failures * interval + timeout` seconds (defaults 2 * 2 + 1 = 5 s) of its last good probe; a
silent one at the latest `lease + interval` seconds after its last renewal. Caches downstream
keep the old answer for the records' TTL (engines register with TTL 30 by default).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import aiohttp
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

if TYPE_CHECKING:
    from nameserver.dynamic import DynamicZones

log = logging.getLogger(__name__)

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

    @property
    def srv_records(self) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r[2].rdtype == dns.rdatatype.SRV)

    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """(address, port) of every SRV target with an address in this registration."""
        out = []
        for _name, _ttl, srv in self.srv_records:
            for owner, _t, rdata in self.records:
                if owner == srv.target and rdata.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
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


@dataclass(frozen=True)
class HealthSettings:
    interval: float = 2.0
    failures: int = 2
    timeout: float = 1.0


class HealthMonitor:
    """Probes registered engines; hides failing ones, shows recovered ones, withdraws expired leases."""

    def __init__(self, dynamic: "DynamicZones", settings: HealthSettings = HealthSettings()) -> None:
        self.dynamic = dynamic
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Probe every `interval` seconds in the background until `stop`."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_once(self) -> None:
        """One round: withdraw expired leases, probe every registration, hide or show."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout))
        registry = self.dynamic.registry
        for registration in registry.expired(time.monotonic()):
            log.info("lease of %s expired: withdrawing %d records", _label(registration), len(registration.records))
            registry.drop(registration)
            self.dynamic.withdraw(registration.origin, registration.records)
        registrations = list(registry)
        results = await asyncio.gather(*(self._healthy(reg) for reg in registrations))
        for registration, healthy in zip(registrations, results):
            self._record(registration, healthy)

    def _record(self, registration: Registration, healthy: bool) -> None:
        if healthy:
            registration.failures = 0
            if registration.hidden:
                registration.hidden = False
                log.info("engine %s healthy again: back in the SRV answers", _label(registration))
                self.dynamic.set_visible(registration.origin, registration.srv_records, True)
            return
        registration.failures += 1
        if registration.failures >= self.settings.failures and not registration.hidden:
            registration.hidden = True
            log.warning("engine %s failed %d probes: out of the SRV answers", _label(registration),
                        registration.failures)
            self.dynamic.set_visible(registration.origin, registration.srv_records, False)

    async def _healthy(self, registration: Registration) -> bool:
        endpoints = registration.endpoints()
        if not endpoints:
            return True  # nothing to probe: the lease alone decides
        results = await asyncio.gather(*(self._probe(host, port) for host, port in endpoints))
        return any(results)

    async def _probe(self, host: str, port: int) -> bool:
        assert self._session is not None  # created by check_once
        url = f"http://[{host}]:{port}/health" if ":" in host else f"http://{host}:{port}/health"
        try:
            async with self._session.get(url) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:  # a probe round must never end the monitor
                log.exception("health check round failed")
            await asyncio.sleep(self.settings.interval)


def _label(registration: Registration) -> str:
    targets = sorted({str(rdata.target) for _n, _t, rdata in registration.srv_records})
    return ",".join(targets) or str(registration.origin)
