"""The fast renderer gives dnspython's bytes: every kind of authoritative answer, every EDNS and flag
variant, both transports, truncation, and compression pointers past 0x3FFF (which dnspython does
not make), compared with the reply rendered as a `dns.message.Message` by dnspython."""
from __future__ import annotations

import itertools
from typing import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rrset
import dns.zone
import pytest
from helpers.reference import CLIENT, dnspython_render
from helpers.testzones import parent_zone

from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.render import PieceCache, rrset_pieces
from nameserver.server import DnsServer
from nameserver.wire import PlainQuery
from zones.catalog import ZoneCatalog, ZoneStore

BULK = 1100  # MX records with A records: a TCP answer well past 16 KiB
EXTRA = "\n".join(
    ["UpperCase CNAME WWW", 'txt-at-apex TXT "a" "b"', "ptr PTR www.sem.test.", "rp RP mail.sem.test. www.sem.test."]
    + [f"bulk MX {i} m{i}.bulk" for i in range(BULK)]
    + [f"m{i}.bulk A 10.1.{i // 256}.{i % 256}" for i in range(0, BULK, 2)]
)
NAMES = [
    "www.sem.test.", "WwW.SeM.TeSt.", "alias.sem.test.", "ext.sem.test.", "into-child.sem.test.",
    "INTO-sub.sem.test.", "loop1.sem.test.", "x.WILD.sem.test.", "a.b.wild.sem.test.", "deep.ent.path.sem.test.",
    "ent.path.sem.test.", "host.sub.sem.test.", "child.sem.test.", "mx.sem.test.", "_llm._tcp.sem.test.",
    "big.sem.test.", "bulk.sem.test.", "nope.sem.test.", "uppercase.sem.test.", "SEM.test.", "x.child.sem.test.",
    "ptr.sem.test.", "rp.sem.test.", "example.com.",
]
TYPES = ["A", "TXT", "MX", "SRV", "NS", "SOA", "ANY", "CNAME", "AAAA", "DS", "PTR", "RP"]


@pytest.fixture(scope="module")
def server() -> DnsServer:
    parent = dns.zone.from_text(parent_zone() + EXTRA + "\n", relativize=False)
    child = dns.zone.from_text(
        "$ORIGIN child.sem.test.\n$TTL 600\n@ SOA ns1 hostmaster 1 3600 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.3\n"
        "x A 192.0.2.77\n", relativize=False)
    catalog = ZoneCatalog(zones={dns.name.from_text("sem.test."): parent, dns.name.from_text("child.sem.test."): child})
    store = ZoneStore(catalog)
    return build_server(ServerOptions(config=ServerConfig(wire_cache=False), semantic=None), store=store).server


def queries() -> Iterator[dns.message.Message]:
    for name, rdtype, size, flags in itertools.product(
        NAMES, TYPES, [None, 512, 1232, 4096, "do"], [0, dns.flags.RD | dns.flags.CD]
    ):
        if size is None:
            query = dns.message.make_query(name, rdtype, use_edns=False)
        elif size == "do":
            query = dns.message.make_query(name, rdtype, want_dnssec=True)
        else:
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=size)
        query.flags = dns.flags.Flag(flags)
        yield query


async def test_fast_render_equals_dnspython(server: DnsServer) -> None:
    fast_count = truncated = pointers_far = 0
    for query in queries():
        wire = query.to_wire()
        assert PlainQuery.from_wire(wire) is not None
        for transport in ("udp", "tcp"):
            (fast,) = await server.handle(wire, CLIENT, transport)
            expected, was_fast = await dnspython_render(server, wire, transport)
            assert fast == expected, (transport, query.to_text())
            fast_count += was_fast
            truncated += bool(fast[2] & 0x02)
            pointers_far += len(fast) > 0x4000
    assert fast_count > 0.9 * len(NAMES) * len(TYPES) * 20  # all but the REFUSED ones took the fast path
    assert truncated > 0 and pointers_far > 0  # both edge cases were exercised


async def test_queries_beyond_the_plain_shape_still_answer(server: DnsServer) -> None:
    query = dns.message.make_query("www.sem.test.", "A", use_edns=0, options=[dns.edns.GenericOption(65009, b"x")])
    wire = query.to_wire()
    assert PlainQuery.from_wire(wire) is None
    (reply,) = await server.handle(wire, CLIENT, "udp")
    expected, _fast = await dnspython_render(server, wire, "udp")
    assert reply == expected and dns.message.from_wire(reply).answer


def test_piece_cache_is_per_object_and_per_catalog() -> None:
    cache = PieceCache(max_entries=2)
    cache.belong_to("catalog 1")
    a = dns.rrset.from_text("a.test.", 60, "IN", "A", "192.0.2.1")
    b = dns.rrset.from_text("a.test.", 60, "IN", "A", "192.0.2.2")  # equal name and type, other data
    assert cache.pieces(a) == rrset_pieces(a) and cache.pieces(b) == rrset_pieces(b)
    assert cache.pieces(a) != cache.pieces(b)
    cache.pieces(dns.rrset.from_text("c.test.", 60, "IN", "A", "192.0.2.3"))  # over the bound: starts afresh
    assert len(cache._entries) == 1
    cache.belong_to("catalog 2")
    assert not cache._entries


async def test_truncation_boundary_counts_the_opt_record(server: DnsServer) -> None:
    """Around the exact size of each answer (OPT included), UDP replies fit or truncate as dnspython's."""
    roomy = DnsServer(server.store, server.chain, ServerConfig(wire_cache=False, max_udp=4096))
    checked = 0
    for name, rdtype in itertools.product(NAMES, TYPES):
        (whole,) = await roomy.handle(dns.message.make_query(name, rdtype, use_edns=0).to_wire(), CLIENT, "tcp")
        if not 512 < len(whole) <= 4096:
            continue
        for payload in (len(whole) - 11, len(whole) - 1, len(whole), len(whole) + 1):
            wire = dns.message.make_query(name, rdtype, use_edns=0, payload=payload).to_wire()
            (fast,) = await roomy.handle(wire, CLIENT, "udp")
            expected, _ = await dnspython_render(roomy, wire, "udp")
            assert fast == expected, (name, rdtype, payload)
            assert bool(fast[2] & 0x02) == (payload < len(whole))
            checked += 1
    assert checked >= 8
