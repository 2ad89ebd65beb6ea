"""Iterative resolution against fake authoritative servers on 127.0.0.x (one port): the happy
path through three levels, caching, and every fault ending in SERVFAIL + an Extended DNS Error."""
from __future__ import annotations

import asyncio

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from helpers.embedding import awaiting
from resolver_fakes import TRUNCATE, FakeServer, hierarchy, running, zone

from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.iterator import OPTION_EMBEDDING, OPTION_TEXT
from nameserver.resolver.rrcache import RRsetCache, Trust

N = dns.name.from_text
QUESTION = N("breach.q.semantic.root.")
EDE = dns.edns.EDECode


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recursor(port: int, cache: RRsetCache | None = None, **config) -> Recursor:
    settings = dict(port=port, query_timeout=0.2, total_timeout=2.0)
    settings.update(config)
    return Recursor(Hints.single("semantic.root.", "127.0.0.1"), config=ResolverConfig(**settings), cache=cache)


def ede_of(result) -> tuple[int, str]:
    assert result.ede is not None, f"no EDE on {dns.rcode.to_text(result.rcode)}"
    return result.ede.code, result.ede.text


async def test_three_levels_cname_chain_to_srv_with_glue_and_additional() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR
    names = [(str(rr.name), dns.rdatatype.to_text(rr.rdtype)) for rr in result.answer]
    assert names == [
        ("breach.q.semantic.root.", "CNAME"),
        ("breach.q.legal.semantic.root.", "CNAME"),
        ("breach.q.contract.legal.semantic.root.", "CNAME"),
        ("_llm._tcp.contract.legal.semantic.root.", "SRV"),
    ]
    assert result.answer[-1][0].port == 8111
    assert [str(rr.name) for rr in result.additional] == ["llm1.contract.legal.semantic.root."]
    # every iterative query went out with RD clear
    for server in servers.values():
        assert all(not q.flags & dns.flags.RD for q in server.received)
    assert result.queries == 3


async def test_second_resolution_is_served_from_cache_with_counted_down_ttl() -> None:
    clock = FakeClock()
    cache = RRsetCache(clock=clock)
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        r = recursor(port, cache)
        await r.resolve(QUESTION, dns.rdatatype.SRV)
        clock.now += 100
        asked = sum(len(s.received) for s in servers.values())
        again = await r.resolve(QUESTION, dns.rdatatype.SRV)
        assert sum(len(s.received) for s in servers.values()) == asked
    assert again.queries == 0
    assert [rr.ttl for rr in again.answer] == [200, 200, 200, 200]


async def test_delegations_are_reused_for_a_sibling_question() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        r = recursor(port)
        await r.resolve(QUESTION, dns.rdatatype.SRV)
        root_before = len(servers["root"].received)
        result = await r.resolve(N("_llm._tcp.legal.semantic.root."), dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR
    assert len(servers["root"].received) == root_before  # went straight to the cached legal NS


async def test_nxdomain_is_cached_negatively() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        r = recursor(port)
        first = await r.resolve(N("nothing.legal.semantic.root."), dns.rdatatype.TXT)
        second = await r.resolve(N("nothing.legal.semantic.root."), dns.rdatatype.SRV)
    assert first.rcode == second.rcode == dns.rcode.NXDOMAIN
    assert second.queries == 0
    assert second.authority[0].rdtype == dns.rdatatype.SOA


async def test_nodata_for_an_empty_non_terminal() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(N("q.legal.semantic.root."), dns.rdatatype.A)
    assert result.rcode == dns.rcode.NOERROR and not result.answer
    assert result.authority[0].rdtype == dns.rdatatype.SOA


async def test_poisoned_additional_and_answer_records_are_dropped() -> None:
    evil_ns = dns.rrset.from_text("ns1.medical.semantic.root.", 3600, "IN", "A", "6.6.6.6")
    evil_answer = dns.rrset.from_text("_llm._tcp.medical.semantic.root.", 3600, "IN", "SRV", "0 0 666 evil.example.")
    evil_far = dns.rrset.from_text("www.example.", 3600, "IN", "A", "6.6.6.6")

    def poison(query, reply, transport):
        reply.answer.extend([evil_answer, evil_far])
        reply.additional.extend([evil_ns, evil_far])
        reply.authority.append(dns.rrset.from_text("medical.semantic.root.", 3600, "IN", "NS", "ns.evil.example."))
        return reply

    servers = hierarchy(legal=poison)
    async with running(list(servers.values())) as port:
        r = recursor(port)
        result = await r.resolve(QUESTION, dns.rdatatype.SRV)
        assert result.rcode == dns.rcode.NOERROR
        for name, rdtype in [
            ("ns1.medical.semantic.root.", dns.rdatatype.A),
            ("_llm._tcp.medical.semantic.root.", dns.rdatatype.SRV),
            ("www.example.", dns.rdatatype.A),
            ("medical.semantic.root.", dns.rdatatype.NS),
        ]:
            assert not r.cache.peek(N(name), rdtype), name
        medical = await r.resolve(N("fever.q.semantic.root."), dns.rdatatype.SRV)
    assert medical.answer[-1][0].port == 8120
    assert servers["medical"].received, "the medical question must reach the real medical server"


async def test_failover_to_the_second_name_server() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)  # ns1.legal is silent
    root = servers["root"].zone
    with root.writer() as txn:
        txn.add(N("legal.semantic.root."), 3600, dns.rdata.from_text("IN", "NS", "ns2.legal.semantic.root."))
        txn.add(N("ns2.legal.semantic.root."), 3600, dns.rdata.from_text("IN", "A", "127.0.0.5"))
    backup = FakeServer("127.0.0.5", servers["legal"].zone)
    async with running([*servers.values(), backup]) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR
    assert backup.received


async def test_silent_server_ends_in_servfail_while_others_are_served() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)
    async with running(list(servers.values())) as port:
        r = recursor(port, query_timeout=0.2, rounds=2)
        stuck, fine = await asyncio.gather(
            r.resolve(QUESTION, dns.rdatatype.SRV), r.resolve(N("fever.q.semantic.root."), dns.rdatatype.SRV)
        )
    assert stuck.rcode == dns.rcode.SERVFAIL
    code, text = ede_of(stuck)
    assert code == EDE.NO_REACHABLE_AUTHORITY and "timeout" in text
    assert len(servers["legal"].received) == 2  # two rounds over its one server
    assert fine.rcode == dns.rcode.NOERROR


async def test_total_deadline_bounds_a_slow_resolution() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)
    async with running(list(servers.values())) as port:
        result = await recursor(port, query_timeout=0.3, rounds=50, total_timeout=0.5).resolve(
            QUESTION, dns.rdatatype.SRV
        )
    assert result.rcode == dns.rcode.SERVFAIL
    code, text = ede_of(result)
    assert code == EDE.NO_REACHABLE_AUTHORITY and "longer than" in text


@pytest.mark.parametrize("misbehaviour", ["refused", "not-authoritative"])
async def test_lame_delegation(misbehaviour: str) -> None:
    def lame(query, reply, transport):
        bad = dns.message.make_response(query)
        if misbehaviour == "refused":
            bad.set_rcode(dns.rcode.REFUSED)
        bad.flags &= ~dns.flags.AA
        return bad

    servers = hierarchy(legal=lame)
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.SERVFAIL
    code, text = ede_of(result)
    assert code == EDE.NO_REACHABLE_AUTHORITY and "lame" in text
    assert len(servers["legal"].received) == 1  # a lame server is not asked again


async def test_referral_back_up_the_tree_is_a_loop() -> None:
    def refer_up(query, reply, transport):
        back = dns.message.make_response(query)
        back.authority.append(dns.rrset.from_text("legal.semantic.root.", 3600, "IN", "NS", "ns1.legal.semantic.root."))
        back.additional.append(dns.rrset.from_text("ns1.legal.semantic.root.", 3600, "IN", "A", "127.0.0.2"))
        return back

    servers = hierarchy(contract=refer_up)
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.SERVFAIL
    code, text = ede_of(result)
    assert "referral" in text


async def test_referral_chain_longer_than_the_bound() -> None:
    body = (
        "$ORIGIN semantic.root.\n@ 3600 IN SOA ns1 h 1 3600 900 1209600 300\n@ 3600 IN NS ns1\n"
        "ns1 3600 IN A 127.0.0.1\n"
    )
    labels = ["a", "b", "c", "d", "e", "f"]
    deep = "semantic.root."
    servers = [
        FakeServer(
            "127.0.0.1",
            zone("semantic.root.", body + f"{labels[0]} IN NS ns.{labels[0]}\nns.{labels[0]} IN A 127.0.0.2\n"),
        )
    ]
    # each deeper zone is served by the next address and delegates one level further down
    for i, label in enumerate(labels):
        deep = f"{label}.{deep}"
        nxt = labels[i + 1] if i + 1 < len(labels) else None
        zb = (
            f"$ORIGIN {deep}\n@ 3600 IN SOA ns h 1 3600 900 1209600 300\n@ 3600 IN NS ns\n"
            f"ns 3600 IN A 127.0.0.{i + 2}\n"
        )
        if nxt:
            zb += f"{nxt} IN NS ns.{nxt}\nns.{nxt} IN A 127.0.0.{i + 3}\n"
        servers.append(FakeServer(f"127.0.0.{i + 2}", zone(deep, zb)))
    async with running(servers) as port:
        result = await recursor(port, max_referrals=3).resolve(N(f"x.{deep}"), dns.rdatatype.TXT)
        unbounded = await recursor(port).resolve(N(f"x.{deep}"), dns.rdatatype.TXT)
    assert result.rcode == dns.rcode.SERVFAIL
    assert "more than 3 referrals" in ede_of(result)[1]
    assert unbounded.rcode == dns.rcode.NXDOMAIN


async def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    servers = hierarchy(contract=lambda q, r, t: TRUNCATE if t == "udp" else r)
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR
    assert result.answer[-1][0].port == 8111


async def test_truncated_answer_without_tcp_fails_with_ede() -> None:
    servers = hierarchy(contract=lambda q, r, t: TRUNCATE)
    servers["contract"].tcp_enabled = False
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.SERVFAIL
    code, text = ede_of(result)
    assert code in (EDE.NETWORK_ERROR, EDE.NO_REACHABLE_AUTHORITY) and "TCP" in text


async def test_overlong_cname_chain_and_cname_loop() -> None:
    servers = hierarchy()
    contract = servers["contract"].zone
    with contract.writer() as txn:
        for i in range(12):
            txn.add(N(f"c{i}.contract.legal.semantic.root."), 300,
                    dns.rdata.from_text("IN", "CNAME", f"c{i + 1}.contract.legal.semantic.root."))
        txn.add(N("x.contract.legal.semantic.root."), 300, dns.rdata.from_text("IN", "CNAME", "y.legal.semantic.root."))
    legal = servers["legal"].zone
    with legal.writer() as txn:
        txn.add(N("y.legal.semantic.root."), 300, dns.rdata.from_text("IN", "CNAME", "x.contract.legal.semantic.root."))
    async with running(list(servers.values())) as port:
        r = recursor(port, max_cname=8)
        long_chain = await r.resolve(N("c0.contract.legal.semantic.root."), dns.rdatatype.SRV)
        loop = await r.resolve(N("x.contract.legal.semantic.root."), dns.rdatatype.SRV)
    assert long_chain.rcode == dns.rcode.SERVFAIL
    assert "CNAME chain longer than 8" in ede_of(long_chain)[1]
    assert loop.rcode == dns.rcode.SERVFAIL
    assert "CNAME loop" in ede_of(loop)[1]


async def test_edns_text_is_forwarded_and_the_embedding_learned_and_passed_down() -> None:
    text = dns.edns.GenericOption(OPTION_TEXT, b"\x00is my contract breached")
    embedding = dns.edns.GenericOption(OPTION_EMBEDDING, b"\x01\x02\x03")
    clients = dns.edns.GenericOption(OPTION_EMBEDDING, b"\x04\x05\x06")

    def embeds(query, reply, transport):
        reply.use_edns(0, 0, 1232, options=[embedding])
        return reply

    servers = hierarchy(root=embeds)
    async with running(list(servers.values())) as port:
        result = await recursor(port).resolve(QUESTION, dns.rdatatype.SRV, (text, clients))
    for key in ("root", "legal", "contract"):
        options = {o.otype: o for o in servers[key].received[-1].options}
        assert options[OPTION_TEXT] == text, key
    assert OPTION_EMBEDDING not in {o.otype for o in servers["root"].received[0].options}
    for key in ("legal", "contract"):
        assert {o.otype: o for o in servers[key].received[-1].options}[OPTION_EMBEDDING] == embedding
    assert embedding in result.options


async def test_name_server_without_glue_is_resolved_first() -> None:
    servers = hierarchy()
    root = servers["root"].zone
    with root.writer() as txn:
        txn.delete(N("medical.semantic.root."), dns.rdatatype.NS)
        txn.add(N("medical.semantic.root."), 3600, dns.rdata.from_text("IN", "NS", "ns.legal.semantic.root."))
    legal = servers["legal"].zone
    with legal.writer() as txn:
        txn.add(N("ns.legal.semantic.root."), 300, dns.rdata.from_text("IN", "A", "127.0.0.4"))
    async with running(list(servers.values())) as port:
        r = recursor(port)
        result = await r.resolve(N("fever.q.semantic.root."), dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR
    assert result.answer[-1][0].port == 8120
    assert r.cache.get(N("ns.legal.semantic.root."), dns.rdatatype.A, min_trust=Trust.ANSWER) is not None


async def test_names_outside_the_root_are_refused() -> None:
    result = await recursor(1).resolve(N("www.example."), dns.rdatatype.A)
    assert result.rcode == dns.rcode.REFUSED
    assert ede_of(result)[0] == EDE.NOT_AUTHORITATIVE


async def test_semantic_cache_reuses_a_route_for_a_close_question_and_guards_negation() -> None:
    import numpy as np

    from nameserver.resolver.routecache import RouteCache
    from nameserver.resolver.semcache import SemanticCache

    rng = np.random.default_rng(7)
    base = rng.normal(size=384).astype(np.float32)
    close = base + 0.05 * rng.normal(size=384).astype(np.float32)
    vectors = {"breach": base, "breaching": close, "no breach": close}

    servers = hierarchy()
    async with running(list(servers.values())) as port:
        r = recursor(port)
        r.routes = RouteCache(SemanticCache(default_threshold=0.9), embed=awaiting(vectors.__getitem__))
        first = await r.resolve(QUESTION, dns.rdatatype.SRV)
        paraphrase = await r.resolve(N("breaching.q.semantic.root."), dns.rdatatype.SRV)
        negated = await r.resolve(N("no-breach.q.semantic.root."), dns.rdatatype.SRV)
    assert first.rcode == dns.rcode.NOERROR and first.queries == 3
    assert paraphrase.rcode == dns.rcode.NOERROR and paraphrase.queries == 0
    assert str(paraphrase.answer[0].name) == "breaching.q.semantic.root."
    assert str(paraphrase.answer[0][0].target) == "_llm._tcp.contract.legal.semantic.root."
    assert paraphrase.answer[-1][0].port == 8111
    assert r.semantic_hits == 1 and paraphrase.private
    assert negated.rcode == dns.rcode.NXDOMAIN  # the guard sent it to the servers, who don't know it


async def test_a_client_embedding_is_never_forwarded_nor_poisons_the_next_client() -> None:
    """A finance vector sent with a medical question must not route it (for anyone, by QNAME)."""
    fever = N("fever.q.semantic.root.")

    def routes_by_embedding(query, reply, transport):  # an authority that trusts a vector it is given
        if OPTION_EMBEDDING not in {o.otype for o in query.options} or query.question[0].name != fever:
            return reply
        poisoned = dns.message.make_response(query)
        poisoned.flags |= dns.flags.AA
        poisoned.answer.append(dns.rrset.from_text(fever, 300, "IN", "CNAME", "_llm._tcp.finance.semantic.root."))
        return poisoned

    servers = hierarchy(root=routes_by_embedding)
    with servers["root"].zone.writer() as txn:
        txn.add(N("_llm._tcp.finance.semantic.root."), 300, dns.rdata.from_text("IN", "SRV", "10 10 8130 llm1"))
    finance = dns.edns.GenericOption(OPTION_EMBEDDING, b"\x01\x02\x03")
    async with running(list(servers.values())) as port:
        r = recursor(port)
        attacker = await r.resolve(fever, dns.rdatatype.SRV, (finance,))
        victim = await r.resolve(fever, dns.rdatatype.SRV)
    assert not [q for s in servers.values() for q in s.received if q.options]  # no option went upstream
    for result in (attacker, victim):
        assert result.rcode == dns.rcode.NOERROR
        assert [str(rr[0].target) for rr in result.answer[:1]] == ["fever.q.medical.semantic.root."]
        assert result.answer[-1][0].port == 8120  # medical's engines, routed by the text
