"""Semantic answers take the fast renderer and give dnspython's bytes: CNAME chains owned by the
question (never kept in the piece cache), SRV/TXT of engines, fallbacks and no-word questions
with their Extended DNS Errors, every EDNS size, flag and case variant, both transports.

Own small zones; a fake encoder compiles the routing indexes (keywords decide every step).

    sem.test.          engine 8100; children law (court, judge, jury, appeal), med (dose)
    law.sem.test.      engine 8110; children trial (jury: no engine, falls back), appeal (8112)
    med.sem.test.      its own zone, no engine (falls back to sem.test.)
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.zone
import numpy as np
import pytest
from helpers.reference import CLIENT, dnspython_render

from codec import text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.server import DnsServer
from nameserver.wire import PlainQuery
from zones.catalog import ZoneCatalog, ZoneStore

APEX = "sem.test."
SOA = "@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n"
APEX_ZONE = f"""$ORIGIN sem.test.
$TTL 300
{SOA}
_llm._tcp       SRV 10 10 8100 llm1
llm1            A   127.0.0.1
llm1            AAAA ::1
_route          TXT "v=semroute1" "route-ttl=300" "th.keyword=0.3"
law._route      TXT "v=semroute1" "desc=law" "kw=court,judge,jury,appeal"
med._route      TXT "v=semroute1" "desc=medicine" "kw=dose,symptom"
med             NS  ns1.med
ns1.med         A   127.0.0.1
_llm._tcp.law   SRV 10 10 8110 llm1.law
_llm._tcp.law   SRV 20 10 8111 llm2.law
_llm._tcp.law   TXT "model=lawyer-7b" "ctx=4096"
llm1.law        A   127.0.0.1
llm2.law        A   127.0.0.2
_route.law      TXT "v=semroute1" "route-ttl=120" "th.keyword=0.3"
trial._route.law  TXT "v=semroute1" "desc=trials" "kw=jury"
appeal._route.law TXT "v=semroute1" "desc=appeals" "kw=appeal"
_llm._tcp.appeal.law SRV 10 10 8112 llm1.appeal.law
llm1.appeal.law A   127.0.0.1
"""
MED_ZONE = f"$ORIGIN med.sem.test.\n$TTL 300\n{SOA}"
TEXTS = [
    "what does a jury decide",  # sem -> law -> trial: no engine, falls back to law (EDE)
    "how do I appeal",  # sem -> law -> appeal
    "the court and the judge",  # sem -> law, no child fits
    "what dose is safe",  # sem -> med (own zone, no engine): falls back to sem (EDE)
    "!!!",  # no words: the general engine (EDE)
    "Court CASE about an APPEAL " + " ".join(f"w{i}" for i in range(20)),
]


class _FakeEncoder:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


@pytest.fixture(scope="module")
def server() -> DnsServer:
    zones = {
        dns.name.from_text(APEX): dns.zone.from_text(APEX_ZONE, relativize=False),
        dns.name.from_text("med.sem.test."): dns.zone.from_text(MED_ZONE, relativize=False),
    }
    store = ZoneStore(ZoneCatalog(zones=zones))
    runner = build_server(ServerOptions(config=ServerConfig(wire_cache=False)), store=store, encoder=_FakeEncoder())
    runner.chain.warm()
    return runner.server


def queries() -> Iterator[bytes]:
    for text, form, rdtype, size, flags, upper in itertools.product(
        TEXTS, ["q", "explain"], ["SRV", "TXT", "CNAME", "A"], [None, 512, 1232, 4096, "do"],
        [0, dns.flags.RD | dns.flags.CD], [False, True],
    ):
        spelled = text_to_qname(text, APEX, form)  # type: ignore[arg-type]
        qname = dns.name.from_text(spelled.upper() if upper else spelled)
        if size is None:
            query = dns.message.make_query(qname, rdtype, use_edns=False)
        elif size == "do":
            query = dns.message.make_query(qname, rdtype, want_dnssec=True)
        else:
            query = dns.message.make_query(qname, rdtype, use_edns=0, payload=size)
        query.flags = dns.flags.Flag(flags)
        yield query.to_wire()


async def test_semantic_fast_render_equals_dnspython(server: DnsServer) -> None:
    fast_count = with_ede = chained = total = 0
    for wire in queries():
        assert PlainQuery.from_wire(wire) is not None
        for transport in ("udp", "tcp"):
            (fast,) = await server.handle(wire, CLIENT, transport)
            expected, was_fast = await dnspython_render(server, wire, transport)
            assert fast == expected, (transport, dns.message.from_wire(wire).to_text())
            reply = dns.message.from_wire(fast)
            total += 1
            fast_count += was_fast
            with_ede += was_fast and any(o.otype == dns.edns.OptionType.EDE for o in reply.options)
            chained += was_fast and len(reply.answer) >= 3
    assert fast_count >= total // 2  # q SRV/TXT/CNAME and explain TXT (the rest are negative answers)
    assert with_ede > 0 and chained > 0


async def test_question_owned_rrsets_bypass_the_piece_cache(server: DnsServer) -> None:
    for wire in queries():
        await server.handle(wire, CLIENT, "udp")
    kept = [rrset for rrset, _pieces in server.pieces._entries.values()]
    assert kept and all(b"q" not in rrset.name.labels and b"explain" not in rrset.name.labels for rrset in kept)


async def test_queries_with_edns_options_answer_as_before(server: DnsServer) -> None:
    qname = text_to_qname(TEXTS[0], APEX)
    query = dns.message.make_query(qname, "SRV", use_edns=0, options=[dns.edns.GenericOption(65009, b"zz")])
    wire = query.to_wire()
    assert PlainQuery.from_wire(wire) is None
    (reply,) = await server.handle(wire, CLIENT, "udp")
    expected, _fast = await dnspython_render(server, wire, "udp")
    parsed = dns.message.from_wire(reply)
    assert reply == expected and parsed.answer
    assert any("fallback to _llm._tcp.law.sem.test." in o.text for o in parsed.options)


async def test_edns_text_form_goes_through_the_fast_renderer_unchanged(server: DnsServer) -> None:
    # Long questions travel as `h-<hash>.q.<zone>` + the text option (65001): read by the plain
    # scan, answered by the fast renderer (the question is copied from the wire), bytes as dnspython's.
    count = 0
    for text, rdtype, size in itertools.product(TEXTS, ("SRV", "TXT", "CNAME", "A"), (512, 1232, 4096)):
        option = dns.edns.GenericOption(TEXT_OPTION, encode_text_option(text))
        query = dns.message.make_query(hashed_qname(text, APEX), rdtype, use_edns=0, payload=size, options=[option])
        wire = query.to_wire()
        plain = PlainQuery.from_wire(wire)
        assert plain is not None and plain.options
        for transport in ("udp", "tcp"):
            (fast,) = await server.handle(wire, CLIENT, transport)
            expected, was_fast = await dnspython_render(server, wire, transport)
            assert fast == expected, (transport, text, rdtype, size)
            count += was_fast
    assert count > 0
