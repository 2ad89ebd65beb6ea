"""Recursive answers in the wire cache. The RRset cache counts in whole seconds, so a kept answer
has its TTLs lowered by the seconds since it was rendered: at every instant a hit is byte-equal to
what the chain answers afresh, until the smallest TTL runs out. ID, QNAME case, RD/CD and EDNS stay
the client's; failures and answers whose resolution crossed a second are not kept."""
from __future__ import annotations

import math

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from nameserver.chain import build_chain
from nameserver.config import ServerConfig
from nameserver.resolver import Hints, Recursor, Resolution, ResolverConfig
from nameserver.resolver.handler import RecursionHandler
from nameserver.resolver.rrcache import RRsetCache, Trust
from nameserver.server import DnsServer
from nameserver.wirecache import WireCache
from zones.catalog import ZoneStore

CLIENT = ("127.0.0.1", 5353)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def seconds(self) -> float:
        return float(math.floor(self.now))


class NoNetwork:
    async def exchange(self, query):
        raise AssertionError(f"the test resolves from the cache only, not {query}")


def make_server(recursor, clock: Clock) -> DnsServer:
    store = ZoneStore()
    config = ServerConfig()
    server = DnsServer(
        store, build_chain(store, config, [RecursionHandler(recursor, cache_answers=True, clock=clock)]), config
    )
    server.wirecache = WireCache(clock=clock)
    return server


def cached_recursor(clock: Clock) -> Recursor:
    cache = RRsetCache(clock=clock.seconds)
    cache.put(dns.rrset.from_text("www.example.test.", 300, "IN", "A", "192.0.2.1"), Trust.ANSWER)
    cache.put(dns.rrset.from_text("alias.example.test.", 60, "IN", "CNAME", "www.example.test."), Trust.ANSWER)
    hints = Hints.single("example.test.", "127.0.0.1")
    return Recursor(hints, config=ResolverConfig(), cache=cache, transport=NoNetwork())


def query(name: str, *, edns=0, cd: bool = False) -> bytes:
    message = dns.message.make_query(name, "A", use_edns=edns)
    message.flags = dns.flags.RD | (dns.flags.CD if cd else 0)
    return message.to_wire()


async def answer(server: DnsServer, wire: bytes) -> bytes:
    """What the transports do: the wire cache first, then the chain."""
    hit = server.cached(wire, "udp")
    if hit is not None:
        return hit
    (reply,) = await server.handle(wire, CLIENT, "udp")
    return reply


async def test_hits_count_down_like_fresh_answers_until_the_smallest_ttl_runs_out() -> None:
    for name, smallest in (("alias.example.test.", 60), ("www.example.test.", 300)):
        for edns, cd in ((0, False), (False, False), (0, True)):
            clock = Clock(100.2)
            server = make_server(cached_recursor(clock), clock)
            first = dns.message.from_wire(await answer(server, query(name, edns=edns, cd=cd)))
            assert first.flags & dns.flags.RA and first.flags & dns.flags.RD and not first.flags & dns.flags.AA
            assert bool(first.flags & dns.flags.CD) == cd and (first.edns >= 0) == (edns is not False)
            mixed = query(name.upper(), edns=edns, cd=cd)
            for now in (100.9, 101.0, 101.5, 157.3, 100.0 + smallest - 0.01):
                clock.now = now
                hit = server.cached(mixed, "udp")
                assert hit is not None, now
                (fresh,) = await server.handle(mixed, CLIENT, "udp")
                assert hit == fresh, now  # ID, case, flags, EDNS and every TTL: what the chain answers now
                seconds = math.floor(now) - 100
                assert [r.ttl for r in dns.message.from_wire(hit).answer] == [r.ttl - seconds for r in first.answer]
            clock.now = 100.0 + smallest  # the smallest TTL is out: the RRset cache has dropped it too
            assert server.cached(mixed, "udp") is None


class Slow:
    """A recursor whose resolution crosses a second boundary, or fails."""

    def __init__(self, clock: Clock, rcode: int, end: float) -> None:
        self.clock, self.rcode, self.end = clock, rcode, end

    async def resolve(self, qname, rdtype, options=(), *, client=""):
        self.clock.now = self.end
        answer = (dns.rrset.from_text(qname, 30, "IN", "A", "192.0.2.7"),) if self.rcode == dns.rcode.NOERROR else ()
        return Resolution(self.rcode, answer=answer)


async def test_answers_not_kept_across_a_second_or_on_failure() -> None:
    for rcode, end, kept in ((dns.rcode.NOERROR, 100.99, True), (dns.rcode.NOERROR, 101.01, False),
                             (dns.rcode.SERVFAIL, 100.5, False), (dns.rcode.NXDOMAIN, 100.5, True)):
        clock = Clock(100.5)
        server = make_server(Slow(clock, rcode, end), clock)
        await answer(server, query("x.example.test."))
        assert (len(server.wirecache) == 1) == kept, (rcode, end)


async def test_without_cache_answers_nothing_is_kept() -> None:
    clock = Clock(100.2)
    store = ZoneStore()
    config = ServerConfig()
    server = DnsServer(store, build_chain(store, config, [RecursionHandler(cached_recursor(clock))]), config)
    await answer(server, query("www.example.test."))
    assert len(server.wirecache) == 0
