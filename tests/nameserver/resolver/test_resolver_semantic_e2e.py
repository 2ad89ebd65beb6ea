"""End to end over the shipped zonefiles: one real server (chain + SemanticHandler) per zone on
127.0.0.1-9 (one port), the recursive resolver following the semantic CNAMEs and referrals across
them, the SDK on top, and the semantic route cache with the real encoder."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from helpers.embedding import awaiting
from resolver_fakes import free_port

from codec.qname import text_to_qname
from nameserver.build import RecursionOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.routecache import RouteCache
from nameserver.resolver.semcache import SemanticCache
from routing.embedder import MODEL_NAME, load_embedder
from sdk import AsyncClient
from tools.cmd_cluster import _zone_dir, zone_addresses
from zones.catalog import ZoneStore

REPO = Path(__file__).resolve().parents[3]
QUESTION = "Is a verbal agreement to sell my car binding if we never signed anything?"


@contextlib.asynccontextmanager
async def distributed(tmp_path: Path, embedder):
    by_address = zone_addresses(REPO / "zonefiles")
    port = free_port([*by_address, "127.0.0.10"])
    runners = []
    try:
        for address, files in sorted(by_address.items()):
            zdir = _zone_dir(tmp_path, REPO / "zonefiles", address, files)
            store = ZoneStore()
            config = ServerConfig(zones_dir=zdir, listen=((address, port),), uvloop=False)
            runner = build_server(ServerOptions(config=config), store=store, encoder=embedder)
            runners.append(runner)
            await runner.start()
        yield port
    finally:
        for runner in runners:
            await runner.stop()


def recursor(port: int, routes: RouteCache | None = None) -> Recursor:
    return Recursor(Hints.single("semantic.root.", "127.0.0.1"),
                    config=ResolverConfig(port=port, query_timeout=2.0, total_timeout=8.0), routes=routes)


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


@pytest.mark.model
async def test_semantic_question_resolves_across_three_servers(tmp_path: Path, embedder) -> None:
    async with distributed(tmp_path, embedder) as port:
        r = recursor(port)
        result = await r.resolve(dns.name.from_text(text_to_qname(QUESTION, "semantic.root.")), dns.rdatatype.SRV)
        options = ServerOptions(config=ServerConfig(listen=(("127.0.0.10", port),), uvloop=False), semantic=None,
                                recursion=RecursionOptions(cache_answers=False))
        runner = build_server(options, recursor=r)
        await runner.start()
        try:
            async with AsyncClient([f"127.0.0.10:{port}"], timeout=8.0) as client:
                route = await client.resolve(QUESTION)
        finally:
            await runner.stop()
    assert result.rcode == dns.rcode.NOERROR, result.ede
    zones = [str(rr.name).split(".q.")[-1] for rr in result.answer if rr.rdtype == dns.rdatatype.CNAME]
    assert zones[:3] == ["semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root."]
    assert result.answer[-1].rdtype == dns.rdatatype.SRV and result.answer[-1][0].port == 8111
    assert route.path == ("semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root.")
    assert route.engines[0].port == 8111 and route.engines[0].attributes["api"] == "openai-v1"
    assert route.stage in ("keyword", "exemplar", "head", "embed", "deep") and route.confidence is not None


@pytest.mark.model
async def test_semantic_cache_routes_a_paraphrase_without_asking_the_hierarchy(tmp_path: Path, embedder) -> None:
    routes = RouteCache(SemanticCache(default_threshold=0.85), embed=awaiting(lambda t: embedder.embed([t])[0]),
                        embed_model=MODEL_NAME)
    paraphrase = "If we never signed anything, is a verbal agreement to sell my car binding?"
    negated = "Is a verbal agreement to sell my car not binding if we never signed anything?"
    async with distributed(tmp_path, embedder) as port:
        r = recursor(port, routes)
        first = await r.resolve(dns.name.from_text(text_to_qname(QUESTION, "semantic.root.")), dns.rdatatype.SRV)
        second = await r.resolve(dns.name.from_text(text_to_qname(paraphrase, "semantic.root.")), dns.rdatatype.SRV)
        third = await r.resolve(dns.name.from_text(text_to_qname(negated, "semantic.root.")), dns.rdatatype.SRV)
    assert first.rcode == dns.rcode.NOERROR and first.queries >= 3
    assert second.queries == 0 and r.semantic_hits == 1
    assert str(second.answer[0][0].target) == "_llm._tcp.contract.legal.semantic.root."
    assert third.queries > 0  # the guard sent the negated question to the servers
    assert routes.cache.stats.guarded == 1


class Counting:
    """The shared encoder, counting the texts the servers give it."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.encoder.embed(texts)


@pytest.mark.model
async def test_a_question_and_its_explain_are_embedded_once_across_the_three_levels(tmp_path: Path, embedder) -> None:
    """Over the wire: the resolver embeds the text once and forwards the vector with both names;
    no server below embeds it again (without the vector, they do)."""
    question = "Can a lease signed over text messages be enforced in court if the landlord changes his mind?"
    servers = Counting(embedder)
    asked: list[str] = []

    async def embed(text: str):
        asked.append(text)
        return embedder.embed([text])[0]

    async with distributed(tmp_path, servers) as port:
        plain = await recursor(port).resolve(
            dns.name.from_text(text_to_qname(question + " Thanks.", "semantic.root.")), dns.rdatatype.SRV)
        without_vector = len(servers.texts)
        servers.texts.clear()
        r = recursor(port, RouteCache(SemanticCache(), embed=embed, embed_model=MODEL_NAME))
        srv, explain = await asyncio.gather(
            r.resolve(dns.name.from_text(text_to_qname(question, "semantic.root.")), dns.rdatatype.SRV),
            r.resolve(dns.name.from_text(text_to_qname(question, "semantic.root.", "explain")), dns.rdatatype.TXT))
    assert plain.rcode == srv.rcode == explain.rcode == dns.rcode.NOERROR
    assert without_vector >= 1  # the question needs the encoder: the servers embed it when not given it
    assert asked == [question.lower()] and servers.texts == []  # once, by the resolver; reused at every level
