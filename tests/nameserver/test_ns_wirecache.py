"""The wire cache stays correct: ID, QNAME case, flags and EDNS of every hit are the client's own.

Unit tests drive `WireCache` directly; the integration test sends the same variety of queries to a
server with the cache and to one without, and requires byte-identical replies.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message
import dns.rrset
import dnslib
import pytest
from helpers.dnswire import tcp_exchange, udp_exchange
from helpers.server import ServerHandle, running_server
from helpers.testzones import write_test_zones

from nameserver import _hotpath  # type: ignore[attr-defined]
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.request import Transport
from nameserver.server import DnsServer
from nameserver.wire import ttl_offsets
from nameserver.wirecache import WireCache


def test_key_ignores_id_and_case_but_not_flags_or_edns() -> None:
    a = dns.message.make_query("www.sem.test.", "A")
    b = dns.message.make_query("WwW.SeM.TeSt.", "A")
    assert _hotpath.locate(a.to_wire(), b"u", 4096)[0] == _hotpath.locate(b.to_wire(), b"u", 4096)[0]
    assert _hotpath.locate(a.to_wire(), b"u", 4096)[0] != _hotpath.locate(a.to_wire(), b"t", 4096)[0]
    variants = [dns.message.make_query("www.sem.test.", "A", use_edns=e, want_dnssec=d)
                for e, d in ((False, False), (0, False), (0, True))]
    cd = dns.message.make_query("www.sem.test.", "A")
    cd.flags |= dns.flags.CD
    keys = {_hotpath.locate(m.to_wire(), b"u", 4096)[0] for m in (a, *variants, cd)}
    assert len(keys) == 4  # a == variants[0]
    # QTYPE bytes that look like ASCII letters are not lower-cased into another type
    upper, lower = (dns.message.make_query("x.", rdtype).to_wire() for rdtype in (65, 97))
    assert _hotpath.locate(upper, b"u", 4096)[0] != _hotpath.locate(lower, b"u", 4096)[0]


def test_non_plain_queries_have_no_key() -> None:
    query = dns.message.make_query("www.sem.test.", "A")
    wire = bytearray(query.to_wire())
    assert _hotpath.locate(bytes(wire[:15]), b"u", 4096) is None
    update = bytearray(wire)
    update[2] |= 0x28  # opcode UPDATE
    assert _hotpath.locate(bytes(update), b"u", 4096) is None
    response = bytearray(wire)
    response[2] |= 0x80
    assert _hotpath.locate(bytes(response), b"u", 4096) is None


def test_hit_patches_id_and_case_and_catalog_change_empties() -> None:
    cache = WireCache(max_entries=2)
    catalog, other = object(), object()
    query = dns.message.make_query("www.sem.test.", "A")
    reply = dns.message.make_response(query)
    assert cache.lookup(query.to_wire(), "udp", catalog) is None
    cache.store(query.to_wire(), "udp", reply.to_wire(), catalog)
    mixed = dns.message.make_query("wWw.SEM.test.", "A")
    hit = cache.lookup(mixed.to_wire(), "udp", catalog)
    parsed = dns.message.from_wire(hit)
    assert parsed.id == mixed.id and parsed.question[0].name.to_text() == "wWw.SEM.test."
    assert cache.lookup(mixed.to_wire(), "udp", other) is None and len(cache) == 0
    cache.store(query.to_wire(), "udp", reply.to_wire(), catalog)  # computed from a stale catalog
    assert len(cache) == 0


def test_bounded_size() -> None:
    cache = WireCache(max_entries=2)
    catalog = object()
    cache.lookup(b"", "udp", catalog)
    for name in ("a.", "b.", "c."):
        query = dns.message.make_query(name, "A")
        cache.store(query.to_wire(), "udp", dns.message.make_response(query).to_wire(), catalog)
    assert len(cache) == 2


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    zones = write_test_zones(tmp_path_factory.mktemp("zones"))
    with running_server(zones) as cached, running_server(zones, ["--no-wire-cache"]) as plain:
        yield cached, plain


def variants() -> Iterator[dns.message.Message]:
    names = ["www.sem.test.", "WwW.SeM.TeSt.", "LeGaL.SeM.TeSt.", "nope.SEM.test.", "host.SUB.sem.test.",
             "ALIAS.sem.test.", "big.sem.test."]
    edns_forms = [None, 512, 1232, 4096, "do"]
    for name, rdtype, edns, rd, cd in itertools.product(names, ["A", "TXT"], edns_forms, [False, True], [False, True]):
        if edns is None:
            query = dns.message.make_query(name, rdtype, use_edns=False)
        elif edns == "do":
            query = dns.message.make_query(name, rdtype, want_dnssec=True)
        else:
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=edns)
        query.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
        yield query


def test_cached_replies_equal_fresh_ones(servers: tuple[ServerHandle, ServerHandle]) -> None:
    cached, plain = servers
    count = 0
    for query in variants():
        wire = query.to_wire()
        for exchange in (udp_exchange, tcp_exchange):
            expected = exchange(plain.host, plain.port, wire)
            for _ in range(2):  # the second time comes from the cache
                assert exchange(cached.host, cached.port, wire) == expected, query.to_text()
            count += 1
        dnslib.DNSRecord.parse(expected)
    assert count == 7 * 2 * 5 * 2 * 2 * 2


def test_case_of_each_client_is_echoed(servers: tuple[ServerHandle, ServerHandle]) -> None:
    cached, _plain = servers
    for name in ("legal.sem.test.", "LeGaL.SeM.TeSt.", "LEGAL.SEM.TEST.", "legal.sem.test."):
        query = dns.message.make_query(name, "TXT")
        rec = dnslib.DNSRecord.parse(udp_exchange(cached.host, cached.port, query.to_wire()))
        assert rec.header.id == query.id
        assert str(rec.q.qname) == name and str(rec.rr[0].rname) == name


def test_entries_with_an_expiry_are_served_only_before_it() -> None:
    now = [10.0]
    cache = WireCache(clock=lambda: now[0])
    catalog = object()
    cache.lookup(b"", "udp", catalog)
    query = dns.message.make_query("www.sem.test.", "A")
    reply = dns.message.make_response(query).to_wire()
    cache.store(query.to_wire(), "udp", reply, catalog, expires=10.0)  # already over: not kept
    assert len(cache) == 0
    cache.store(query.to_wire(), "udp", reply, catalog, expires=11.0)
    now[0] = 10.99
    assert cache.lookup(query.to_wire(), "udp", catalog) is not None
    now[0] = 11.0
    assert cache.lookup(query.to_wire(), "udp", catalog) is None and len(cache) == 0


def test_ttls_count_down_from_their_epoch_but_opt_is_left_alone() -> None:
    now = [50.7]
    cache = WireCache(clock=lambda: now[0])
    catalog = object()
    cache.lookup(b"", "udp", catalog)
    query = dns.message.make_query("www.sem.test.", "A", use_edns=0)
    reply = dns.message.make_response(query)
    reply.answer = [dns.rrset.from_text("www.sem.test.", 30, "IN", "A", "192.0.2.1", "192.0.2.2")]
    reply.authority = [dns.rrset.from_text("sem.test.", 20, "IN", "NS", "ns1.sem.test.")]
    reply.use_edns(0, dns.flags.DO, 1232)
    wire = reply.to_wire()
    assert ttl_offsets(wire) is not None and len(ttl_offsets(wire)) == 3
    assert ttl_offsets(wire + b"x") is None and ttl_offsets(wire[:-1]) is None
    cache.store(query.to_wire(), "udp", wire, catalog, expires=70.0, ttl_epoch=50)
    now[0] = 57.2
    hit = dns.message.from_wire(cache.lookup(query.to_wire(), "udp", catalog))
    assert [r.ttl for r in (*hit.answer, *hit.authority)] == [23, 13]
    assert hit.ednsflags & dns.flags.DO and hit.payload == 1232
    now[0] = 70.0
    assert cache.lookup(query.to_wire(), "udp", catalog) is None


def plain_server(zones: Path, wire_cache: bool) -> DnsServer:
    """The in-process core of a plain-DNS server of `zones` (UDP answers up to 4096 bytes)."""
    config = ServerConfig(zones_dir=zones, max_udp=4096, wire_cache=wire_cache)
    runner = build_server(ServerOptions(config=config, semantic=None))
    runner.load()
    return runner.server


async def answer(server: DnsServer, wire: bytes, transport: Transport) -> bytes:
    replies = server.respond(wire, ("127.0.0.1", 5353), transport)
    if not isinstance(replies, tuple):
        replies = await replies
    return replies[0]


async def test_udp_sizes_share_two_entries_and_each_client_gets_its_own_truncation(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path)
    cached, fresh = plain_server(zones, True), plain_server(zones, False)
    whole = len(await answer(fresh, dns.message.make_query("big.sem.test.", "TXT", use_edns=0).to_wire(), "tcp"))
    assert 512 < whole < 4096
    for payload in range(1, 4001):
        wire = dns.message.make_query("big.sem.test.", "TXT", use_edns=0, payload=payload).to_wire()
        reply = await answer(cached, wire, "udp")
        assert reply == await answer(fresh, wire, "udp"), payload
        truncated = bool(dns.message.from_wire(reply).flags & dns.flags.TC)
        assert truncated == (max(payload, 512) < whole), payload
        assert await answer(cached, wire, "tcp") == await answer(fresh, wire, "tcp")
    cache = cached.wirecache
    assert cache is not None and len(cache) == 3  # UDP whole and truncated, TCP whole
    assert cache.bytes <= 3 * (whole + 200) <= cache.max_bytes


def test_filling_past_the_byte_budget_evicts_the_least_recently_used() -> None:
    cache = WireCache(max_bytes=20_000)
    catalog = object()
    cache.lookup(b"", "udp", catalog)
    queries = [dns.message.make_query(f"host{i}.sem.test.", "TXT") for i in range(200)]
    for number, query in enumerate(queries):
        reply = dns.message.make_response(query)
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "TXT", '"' + "x" * 200 + '"'))
        cache.store(query.to_wire(), "udp", reply.to_wire(), catalog)
        assert cache.bytes <= cache.max_bytes
        assert cache.lookup(queries[0].to_wire(), "udp", catalog) is not None, number  # kept in use
    assert 20 < len(cache) < 200
    assert cache.lookup(queries[1].to_wire(), "udp", catalog) is None  # the least recently used left
    assert cache.lookup(queries[-1].to_wire(), "udp", catalog) is not None
