"""The client SDK: RFC 2782 ordering, the EDNS form for long text, resolve/ask through a real
recursive server over fake authorities, engine failover with aiohttp fakes, typed errors."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import random

import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from aiohttp import web
from resolver_fakes import hierarchy, recursive_server, running

from codec.edns_text import TEXT_OPTION, decode_text_option
from sdk import AsyncClient, Client, EngineFailure, NoRoute, ResolveTimeout, ServerFailure
from sdk.route import order_srv, question_query

N = dns.name.from_text


# -- RFC 2782 ---------------------------------------------------------------------------------

def test_srv_order_is_by_priority_then_weighted() -> None:
    records = [(20, 0, 1, "c."), (10, 90, 1, "a."), (10, 10, 1, "b."), (30, 5, 1, "d.")]
    rng = random.Random(42)
    firsts = collections.Counter()
    for _ in range(2000):
        order = order_srv(records, rng)
        assert [r[0] for r in order] == [10, 10, 20, 30]
        firsts[order[0][3]] += 1
    assert 1650 < firsts["a."] < 1950  # weight 90 of 100
    assert firsts["a."] + firsts["b."] == 2000


def test_srv_order_is_repeatable_with_a_seeded_rng() -> None:
    records = [(10, w, 1, f"t{w}.") for w in (1, 2, 3, 4, 5)]
    assert order_srv(records, random.Random(7)) == order_srv(records, random.Random(7))


def test_zero_weight_records_are_picked_rarely_but_not_never() -> None:
    records = [(10, 0, 1, "zero."), (10, 50, 1, "heavy.")]
    rng = random.Random(1)
    firsts = collections.Counter(order_srv(records, rng)[0][3] for _ in range(5000))
    assert 0 < firsts["zero."] < 250


# -- query building ---------------------------------------------------------------------------

def test_short_text_uses_the_qname_form_and_long_text_the_edns_form() -> None:
    short = question_query("is a verbal contract binding", "semantic.root.")
    assert short.name.endswith(".q.semantic.root.") and not short.options
    long_text = "why " * 200
    long = question_query(long_text, "semantic.root.")
    assert long.name.startswith("h-")
    option = next(data for code, data in long.options if code == TEXT_OPTION)
    assert decode_text_option(option) == long_text


# -- against a recursive server and fake engines ----------------------------------------------

@contextlib.asynccontextmanager
async def fake_engine(reply: str, status: int = 200):
    seen: list[dict] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(await request.json())
        if status != 200:
            return web.json_response({"error": "overloaded"}, status=status)
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": reply}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1], seen
    finally:
        await runner.cleanup()


def dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_engines(servers, engines: list[tuple[int, int, int]]) -> None:
    """Replace contract's SRV with (priority, weight, port) targets llm<i>."""
    contract = servers["contract"].zone
    owner = N("_llm._tcp.contract.legal.semantic.root.")
    with contract.writer() as txn:
        txn.delete(owner, dns.rdatatype.SRV)
        for i, (priority, weight, port) in enumerate(engines):
            target = f"llm{i}.contract.legal.semantic.root."
            txn.add(owner, 300, dns.rdata.from_text("IN", "SRV", f"{priority} {weight} {port} {target}"))
            txn.add(N(target), 300, dns.rdata.from_text("IN", "A", "127.0.0.1"))


async def test_resolve_returns_path_engines_and_attributes() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        async with AsyncClient([f"{host}:{rport}"], rng=random.Random(1), timeout=1.0) as client:
            route = await client.resolve("breach")
    assert route.path == ("semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root.")
    assert route.domain == "contract.legal.semantic.root."
    assert route.engines[0].port == 8111 and route.engines[0].addresses == ("127.0.0.1",)
    assert route.engines[0].attributes["model"] == "smollm2-135m-instruct"
    assert route.engines[0].base_url == "http://127.0.0.1:8111/v1"
    assert 0 < route.ttl <= 300


async def test_ask_fails_over_from_a_dead_engine_to_a_live_one() -> None:
    servers = hierarchy()
    async with fake_engine("it depends") as (live, seen), fake_engine("busy", status=503) as (busy, _):
        with_engines(servers, [(10, 10, dead_port()), (20, 10, busy), (30, 10, live)])
        async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
            async with AsyncClient(
                [f"{host}:{rport}"], timeout=1.0, http_timeout=5.0, compress_context=False
            ) as client:
                answer = await client.ask("breach", context="we agreed by phone")
            sync_answer = await asyncio.to_thread(
                Client([f"{host}:{rport}"], timeout=1.0, http_timeout=5.0).ask, "breach"
            )
    assert answer.text == sync_answer.text == "it depends"
    assert answer.engine.port == live
    assert len(answer.failures) == 2 and "HTTP 503" in answer.failures[1]
    assert seen[0]["messages"][0] == {"role": "system", "content": "we agreed by phone"}
    assert seen[0]["messages"][-1] == {"role": "user", "content": "breach"}
    assert seen[0]["model"] == "smollm2-135m-instruct"


async def test_every_engine_dead_is_an_engine_error() -> None:
    servers = hierarchy()
    with_engines(servers, [(10, 10, dead_port())])
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        async with AsyncClient([f"{host}:{rport}"], timeout=1.0, http_timeout=2.0) as client:
            with pytest.raises(EngineFailure, match="every engine of contract.legal.semantic.root. failed"):
                await client.ask("breach")


async def test_compressor_hook_shapes_the_request() -> None:
    servers = hierarchy()
    calls = []

    def compressor(context, route):
        calls.append((context, route.domain))
        return {"context_codec": "zstd-dict", "context": "packed"}

    async with fake_engine("ok") as (live, seen):
        with_engines(servers, [(10, 10, live)])
        async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
            async with AsyncClient([f"{host}:{rport}"], timeout=1.0, compressor=compressor) as client:
                await client.ask("breach", context="long context")
    assert calls == [("long context", "contract.legal.semantic.root.")]
    assert seen[0]["context_codec"] == "zstd-dict" and len(seen[0]["messages"]) == 1


async def test_typed_errors_no_route_server_failure_timeout() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        async with AsyncClient([f"{host}:{rport}"], timeout=3.0, degrade=False) as client:
            with pytest.raises(NoRoute, match="does not exist"):
                await client.resolve("unknown question")
            with pytest.raises(ServerFailure, match="SERVFAIL.*EDE 22"):
                await client.resolve("breach")
        async with AsyncClient([f"{host}:{rport}"], timeout=3.0) as degrading:
            route = await degrading.resolve("breach")
        assert route.stage == "degraded" and "EDE 22" in route.explain["reason"]
        assert route.domain == "semantic.root." and route.engines[0].port == 8100
        async with AsyncClient([f"{servers['legal'].address}:{port}"], timeout=0.2) as silent:
            with pytest.raises(ResolveTimeout, match="is the server running"):
                await silent.resolve("breach")
