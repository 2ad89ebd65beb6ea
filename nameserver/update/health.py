"""Registered engines: their leases and their health, and how both shape the SRV answers.

A *registration* is the set of records one UPDATE with an UPDATE-LEASE option adds (an engine
re-sends the same UPDATE to renew, which refreshes the lease). `HealthMonitor` probes every
registration's `http://<address>:<port>/health` (address from the A/AAAA of the SRV target in
the same registration) each `interval` seconds:
- `failures` failed probes in a row (no answer within `timeout`, or a status other than 200)
  hide the registration's SRV records from the served zone; one good probe shows them again;
- a lease not renewed in time withdraws every record of the registration (journaled).

Only addresses the policy allows are probed (`DynamicZones.may_probe`: loopback, and the
ranges of `semdns serve --health-probe-allow`): a registration that would be probed elsewhere is
refused when it arrives, and one replayed from the journal after the ranges narrowed is not
probed (logged once; its lease alone decides).

Documented bound: an engine that dies leaves the SRV answers within
`failures * interval + timeout` seconds (defaults 2 * 2 + 1 = 5 s) of its last good probe; a
silent one at the latest `lease + interval` seconds after its last renewal. Caches downstream
keep the old answer for the records' TTL (engines register with TTL 30 by default).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp

from common.tasks import cancel_and_wait
from nameserver.update.dynamic import DynamicZones
from nameserver.update.registry import Registration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthSettings:
    interval: float = 2.0
    failures: int = 2
    timeout: float = 1.0


class HealthMonitor:
    """Probes registered engines; hides failing ones, shows recovered ones, withdraws expired leases."""

    def __init__(self, dynamic: DynamicZones, settings: HealthSettings = HealthSettings()) -> None:
        self.dynamic = dynamic
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Probe every `interval` seconds in the background until `stop`."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
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
        endpoints = tuple((host, port) for host, port in registration.endpoints() if self.dynamic.may_probe(host))
        if len(endpoints) < len(registration.endpoints()) and not registration.unprobed:
            registration.unprobed = True
            log.warning("engine %s: not probing addresses outside --health-probe-allow", _label(registration))
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
