"""The RRset cache: TTL countdown, RFC 2308 negative caching, trust ranks, LRU eviction, statistics."""
from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from nameserver.resolver.rrcache import Kind, RRsetCache, Trust, negative_ttl


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rr(name: str, ttl: int, rdtype: str = "A", *data: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *(data or ("192.0.2.1",)))


SOA = dns.rrset.from_text("example.", 900, "IN", "SOA", "ns1.example. h.example. 1 3600 900 1209600 120")
N = dns.name.from_text


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_positive_hit_counts_the_ttl_down_and_expires(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("a.example.", 300))
    clock.now += 100
    hit = cache.get(N("a.example."), dns.rdatatype.A)
    assert hit is not None and hit.kind is Kind.POSITIVE
    assert hit.rrset.ttl == 200
    assert hit.rrset[0].address == "192.0.2.1"
    clock.now += 200
    assert cache.get(N("a.example."), dns.rdatatype.A) is None
    assert len(cache) == 0


def test_hit_does_not_change_the_stored_rrset(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("a.example.", 300))
    clock.now += 10
    cache.get(N("a.example."), dns.rdatatype.A).rrset.ttl = 1
    assert cache.get(N("a.example."), dns.rdatatype.A).rrset.ttl == 290


def test_names_match_case_insensitively(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("MiXed.Example.", 60))
    assert cache.get(N("mixed.example."), dns.rdatatype.A) is not None


def test_max_ttl_clamps(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock, max_ttl=60)
    cache.put(rr("a.example.", 86400))
    assert cache.get(N("a.example."), dns.rdatatype.A).rrset.ttl == 60


def test_nxdomain_answers_every_type_for_the_soa_minimum(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    assert negative_ttl(SOA) == 120
    cache.put_nxdomain(N("gone.example."), SOA)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.SRV):
        hit = cache.get(N("gone.example."), rdtype)
        assert hit is not None and hit.kind is Kind.NXDOMAIN
    clock.now += 20
    assert cache.get(N("gone.example."), dns.rdatatype.A).soa.ttl == 100
    clock.now += 100
    assert cache.get(N("gone.example."), dns.rdatatype.A) is None


def test_nodata_is_per_type(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put_nodata(N("a.example."), dns.rdatatype.AAAA, SOA)
    cache.put(rr("a.example.", 300))
    assert cache.get(N("a.example."), dns.rdatatype.AAAA).kind is Kind.NODATA
    assert cache.get(N("a.example."), dns.rdatatype.A).kind is Kind.POSITIVE
    assert cache.get(N("a.example."), dns.rdatatype.TXT) is None


def test_negative_ttl_uses_soa_ttl_when_lower(clock: FakeClock) -> None:
    soa = dns.rrset.from_text("example.", 30, "IN", "SOA", "ns1.example. h.example. 1 3600 900 1209600 600")
    cache = RRsetCache(clock=clock)
    cache.put_nodata(N("a.example."), dns.rdatatype.A, soa)
    assert cache.get(N("a.example."), dns.rdatatype.A).soa.ttl == 30


def test_glue_never_overwrites_an_authoritative_answer(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("ns1.example.", 300, "A", "192.0.2.1"), Trust.ANSWER)
    cache.put(rr("ns1.example.", 300, "A", "6.6.6.6"), Trust.GLUE)
    assert cache.get(N("ns1.example."), dns.rdatatype.A).rrset[0].address == "192.0.2.1"


def test_glue_is_not_an_answer_for_clients(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("ns1.example.", 300), Trust.GLUE)
    assert cache.get(N("ns1.example."), dns.rdatatype.A) is None
    assert cache.get(N("ns1.example."), dns.rdatatype.A, min_trust=Trust.GLUE) is not None


def test_lru_evicts_the_least_recently_used(clock: FakeClock) -> None:
    cache = RRsetCache(max_entries=2, clock=clock)
    cache.put(rr("a.example.", 300))
    cache.put(rr("b.example.", 300))
    cache.get(N("a.example."), dns.rdatatype.A)  # a is now the most recent
    cache.put(rr("c.example.", 300))
    assert cache.get(N("b.example."), dns.rdatatype.A) is None
    assert cache.get(N("a.example."), dns.rdatatype.A) is not None
    assert cache.get(N("c.example."), dns.rdatatype.A) is not None
    assert cache.stats.evictions == 1
    assert cache.stats.size == 2


def test_statistics_count_hits_and_misses(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("a.example.", 300))
    cache.get(N("a.example."), dns.rdatatype.A)
    cache.get(N("a.example."), dns.rdatatype.A)
    cache.get(N("b.example."), dns.rdatatype.A)
    cache.get(N("b.example."), dns.rdatatype.A, count=False)
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.size) == (2, 1, 1)
    assert stats.hit_rate == pytest.approx(2 / 3)


def test_zero_ttl_is_not_cached(clock: FakeClock) -> None:
    cache = RRsetCache(clock=clock)
    cache.put(rr("a.example.", 0))
    assert len(cache) == 0


def test_byte_budget_evicts_the_least_recently_used_and_is_never_passed(clock: FakeClock) -> None:
    budget = 40_000
    cache = RRsetCache(max_entries=100_000, clock=clock, max_bytes=budget)
    big = '"' + "x" * 250 + '"'
    cache.put(rr("keep.example.", 300, "TXT", big, big))
    for i in range(500):
        cache.put(rr(f"n{i}.example.", 300, "TXT", big, big))
        assert cache.bytes <= budget
        assert cache.get(N("keep.example."), dns.rdatatype.TXT) is not None, i  # in use: kept
    assert 20 < len(cache) < 500
    assert cache.get(N("n0.example."), dns.rdatatype.TXT) is None
    assert cache.get(N("n499.example."), dns.rdatatype.TXT) is not None
    assert cache.stats.evictions == 501 - len(cache)
    cache.flush()
    assert cache.bytes == 0
