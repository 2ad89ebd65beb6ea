"""`semdns trace` and `semdns ask` against fake authorities (and a real recursive server)."""
from __future__ import annotations

import argparse
import asyncio

import dns.rrset
from resolver_fakes import hierarchy, recursive_server, running

from tools import cmd_ask, cmd_trace


def explains(query, reply, transport):
    """The root fake answers the explain form with key=value TXT strings."""
    if b"explain" in [label.lower() for label in query.question[0].name.labels]:
        reply = type(reply)(id=query.id)
        reply.flags = 0x8400
        reply.question = list(query.question)
        reply.answer.append(dns.rrset.from_text(
            query.question[0].name, 60, "IN", "TXT", '"stage=keyword" "confidence=0.93" "choice=legal"'
        ))
    return reply


async def test_trace_prints_every_hop_with_stage_and_time(capsys) -> None:
    servers = hierarchy(root=explains)
    args = argparse.Namespace(text="breach", zone="semantic.root.", type="SRV", timeout=1.0, no_explain=False)
    async with running(list(servers.values())) as port:
        code = await cmd_trace.trace(args, "127.0.0.1", port)
    out = capsys.readouterr().out
    assert code == 0
    assert f";; hop 1: 127.0.0.1:{port} as semantic.root." in out
    assert f";; hop 2: 127.0.0.2:{port} as legal.semantic.root." in out
    assert f";; hop 3: 127.0.0.3:{port} as contract.legal.semantic.root." in out
    assert "stage=keyword confidence=0.93 choice=legal" in out
    assert "breach.q.semantic.root. 300 IN CNAME breach.q.legal.semantic.root." in out
    assert "legal.semantic.root. 3600 IN NS ns1.legal.semantic.root." in out
    assert " ms" in out and ";; result: NOERROR after 3 queries" in out


async def test_trace_shows_a_dead_hop() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)
    args = argparse.Namespace(text="breach", zone="semantic.root.", type="SRV", timeout=0.2, no_explain=True)
    async with running(list(servers.values())) as port:
        code = await cmd_trace.trace(args, "127.0.0.1", port)
    assert code == 1


async def test_ask_route_only_prints_the_route(capsys) -> None:
    servers = hierarchy(root=explains)
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        args = argparse.Namespace(text="breach", server=[f"{host}:{rport}"], zone="semantic.root.",
                                  context=None, route_only=True, timeout=1.0, json=False,
                                  no_compress=False, verbose=False)
        code = await asyncio.to_thread(cmd_ask.run, args)
        missing = argparse.Namespace(**{**vars(args), "text": "unknown thing"})
        failed = await asyncio.to_thread(cmd_ask.run, missing)
    captured = capsys.readouterr()
    assert code == 0
    assert "route:      semantic.root. -> legal.semantic.root. -> contract.legal.semantic.root." in captured.out
    assert "stage:      keyword   confidence: 0.93" in captured.out
    assert "http://127.0.0.1:8111/v1" in captured.out and "model=smollm2-135m-instruct" in captured.out
    assert failed == 1 and "NoRoute" in captured.err
