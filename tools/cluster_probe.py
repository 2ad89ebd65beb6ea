"""NOTIFY→served propagation: a signed UPDATE at a zone's primary, then every secondary polled
(SOA over UDP, every 2 ms) until it answers the new serial; the time from sending the UPDATE to
that answer, in ms, per secondary. Runs wherever it can reach the addresses (for the namespaced
cluster: inside its hub namespace, `cluster_netns.call_in`).
"""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

POLL = 0.002
QUERY_TIMEOUT = 0.25


@dataclass(frozen=True)
class Target:
    name: str  # node name, e.g. "k1"
    kind: str  # "semdns", "knot" or "nsd"
    address: str
    port: int = 53


@dataclass(frozen=True)
class Propagation:
    zone: str
    serial: int
    update_ms: float  # the UPDATE's own round trip
    served_ms: dict[str, float | None]  # node -> ms until it served `serial` (None: not in time)
    label: str = ""  # the TXT record the UPDATE wrote (relative to the zone)


async def soa_serial(address: str, port: int, zone: dns.name.Name) -> int | None:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    try:
        reply = await dns.asyncquery.udp(query, address, port=port, timeout=QUERY_TIMEOUT)
    except (dns.exception.DNSException, OSError):
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return None
    return reply.answer[0][0].serial


def send_update(zone: dns.name.Name, primary: tuple[str, int], keyring: dict[dns.name.Name, dns.tsig.Key],
                keyname: dns.name.Name, label: str) -> dns.message.Message:
    update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=keyname)
    update.replace(label, 60, "TXT", f'"propagation probe {label}"')
    return dns.query.tcp(update, primary[0], port=primary[1], timeout=5.0)


async def _measure(zone: dns.name.Name, primary: tuple[str, int], keyring: dict[dns.name.Name, dns.tsig.Key],
                   keyname: dns.name.Name, targets: list[Target], timeout: float) -> Propagation:
    before = await soa_serial(*primary, zone) or 0
    label = f"probe-{int(time.time() * 1000)}"
    start = time.monotonic()
    reply = await asyncio.to_thread(send_update, zone, primary, keyring, keyname, label)
    update_ms = (time.monotonic() - start) * 1000
    if reply.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"UPDATE of {zone} refused: {dns.rcode.to_text(reply.rcode())}")
    serial = await soa_serial(*primary, zone) or 0
    if serial <= before:
        raise RuntimeError(f"UPDATE of {zone} did not raise the serial ({before} -> {serial})")

    async def watch(target: Target) -> float | None:
        deadline = start + timeout
        while time.monotonic() < deadline:
            seen = await soa_serial(target.address, target.port, zone)
            if seen is not None and seen >= serial:
                return (time.monotonic() - start) * 1000
            await asyncio.sleep(POLL)
        return None

    served = await asyncio.gather(*(watch(t) for t in targets))
    return Propagation(zone.to_text(), serial, update_ms, {t.name: ms for t, ms in zip(targets, served)}, label)


def measure(zone: str, primary: tuple[str, int], keyring: dict[dns.name.Name, dns.tsig.Key],
            keyname: str, targets: list[Target], timeout: float = 30.0) -> Propagation:
    """One UPDATE at `primary`, timed until each target serves its serial (blocking)."""
    return asyncio.run(_measure(dns.name.from_text(zone), primary, keyring, dns.name.from_text(keyname),
                                targets, timeout))


def summary(results: list[Propagation], kinds: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per kind of secondary: n, p50, max (ms) over every measurement it took part in."""
    by_kind: dict[str, list[float]] = {}
    for result in results:
        for node, ms in result.served_ms.items():
            if ms is not None:
                by_kind.setdefault(kinds[node], []).append(ms)
    return {kind: {"n": len(v), "p50": statistics.median(v), "max": max(v)} for kind, v in sorted(by_kind.items())}


def send_notify(zone: str, target: tuple[str, int], keyring: dict[dns.name.Name, dns.tsig.Key],
                timeout: float = 1.0, attempts: int = 5) -> bool:
    """A signed NOTIFY for `zone` to `target`; True once acknowledged (retried `attempts` times)."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags = dns.flags.AA  # (the opcode lives in the flags word: set it after)
    query.set_opcode(dns.opcode.NOTIFY)
    query.use_tsig(keyring, next(iter(keyring)))
    for _ in range(attempts):
        try:
            reply = dns.query.udp(query, target[0], port=target[1], timeout=timeout)
            return reply.rcode() == dns.rcode.NOERROR
        except (dns.exception.DNSException, OSError):
            continue
    return False
