"""The recursor answers from its RRset cache before it embeds a semantic question."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import numpy as np
from resolver_fakes import hierarchy, running

from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.iterator import OPTION_EMBEDDING
from nameserver.resolver.routecache import RouteCache
from nameserver.resolver.semcache import SemanticCache

N = dns.name.from_text
QUESTION = N("breach.q.semantic.root.")


class CountingEmbed:
    """A deterministic embedder that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, text: str) -> np.ndarray:
        self.calls += 1
        return np.random.default_rng(len(text)).normal(size=384).astype(np.float32)


def recursor(port: int, embed: CountingEmbed) -> Recursor:
    config = ResolverConfig(port=port, query_timeout=0.2, total_timeout=2.0)
    r = Recursor(Hints.single("semantic.root.", "127.0.0.1"), config=config)
    r.routes = RouteCache(SemanticCache(default_threshold=0.9), embed=embed, embed_model="all-minilm-l6-v2")
    return r


async def test_a_cached_question_is_answered_without_embedding_it() -> None:
    embed = CountingEmbed()
    async with running(list(hierarchy().values())) as port:
        r = recursor(port, embed)
        first = await r.resolve(QUESTION, dns.rdatatype.SRV)
        second = await r.resolve(QUESTION, dns.rdatatype.SRV)
    assert first.rcode == dns.rcode.NOERROR and first.queries == 3
    assert embed.calls == 1  # the full resolution embedded it, the cached answer did not
    assert second.queries == 0 and r.semantic_hits == 0
    assert [(rr.name, rr.rdtype, set(rr)) for rr in second.answer] == [
        (rr.name, rr.rdtype, set(rr)) for rr in first.answer
    ]


async def test_an_uncached_question_is_still_embedded_and_learned() -> None:
    embed = CountingEmbed()
    async with running(list(hierarchy().values())) as port:
        r = recursor(port, embed)
        result = await r.resolve(QUESTION, dns.rdatatype.SRV)
    assert result.rcode == dns.rcode.NOERROR and embed.calls == 1
    assert r.routes is not None and r.routes.cache.stats.size == 1


class NoNetwork:
    async def exchange(self, query):
        raise AssertionError(f"the answer is cached; nothing should be asked: {query}")


def cached_semantic_server(embed: CountingEmbed, *, wire_cache: bool):
    from nameserver.build import RecursionOptions, ServerOptions, build_server
    from nameserver.config import ServerConfig
    from nameserver.resolver.rrcache import RRsetCache

    cache = RRsetCache(clock=lambda: 100.0)
    cache.put(dns.rrset.from_text("breach.q.semantic.root.", 300, "IN", "CNAME", "_llm._tcp.legal.semantic.root."))
    srv = dns.rrset.from_text("_llm._tcp.legal.semantic.root.", 300, "IN", "SRV", "10 1 8110 llm1.legal.semantic.root.")
    cache.put(srv)
    routes = RouteCache(SemanticCache(), embed=embed, embed_model="all-minilm-l6-v2")
    r = Recursor(Hints.single("semantic.root.", "127.0.0.1"), cache=cache, transport=NoNetwork(), routes=routes)
    options = ServerOptions(config=ServerConfig(wire_cache=wire_cache), semantic=None, recursion=RecursionOptions())
    return build_server(options, recursor=r).server


async def ask(server, name: str) -> tuple[dns.message.Message, dns.message.Message]:
    query = dns.message.make_query(name, "SRV", use_edns=0)
    query.flags = dns.flags.RD
    replies = server.respond(query.to_wire(), ("127.0.0.1", 5353), "udp")
    if type(replies) is not tuple:
        replies = await replies
    return query, dns.message.from_wire(replies[0])


async def test_cached_semantic_answers_never_reach_the_embedder() -> None:
    for wire_cache in (False, True):
        embed = CountingEmbed()
        server = cached_semantic_server(embed, wire_cache=wire_cache)
        for name in ("breach.q.semantic.root.", "BReach.Q.semantic.ROOT."):
            query, reply = await ask(server, name)
            assert reply.id == query.id and reply.rcode() == dns.rcode.NOERROR
            assert str(reply.question[0].name) == name  # the client's case
            assert reply.flags & dns.flags.RA and reply.flags & dns.flags.RD and not reply.flags & dns.flags.AA
            assert [rr.rdtype for rr in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.SRV]
        assert embed.calls == 0
        if wire_cache:
            assert server.wirecache is not None and server.wirecache.hits == 1


async def test_a_questions_explain_goes_up_with_the_srvs_embedding_at_no_second_embedding() -> None:
    embed = CountingEmbed()
    servers = hierarchy()
    async with running(list(servers.values())) as port:
        r = recursor(port, embed)
        await asyncio.gather(r.resolve(QUESTION, dns.rdatatype.SRV),
                             r.resolve(N("breach.explain.semantic.root."), dns.rdatatype.TXT))
    assert embed.calls == 1  # one question, embedded once for its two names
    sent = {str(q.question[0].name): [o.to_wire() for o in q.options if o.otype == OPTION_EMBEDDING]
            for q in servers["root"].received}
    srv, explain = sent["breach.q.semantic.root."], sent["breach.explain.semantic.root."]
    assert srv and srv == explain  # the same option bytes: the server classifies once for both
    assert r.routes is not None and r.routes.cache.stats.size == 1  # the route learned, not the explain
