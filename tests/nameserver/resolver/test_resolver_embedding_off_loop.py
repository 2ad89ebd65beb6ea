"""The resolver embeds a new semantic question off its event loop (the servers' batcher), once for
the SRV and the explain that arrive together, and goes on without a vector when the encoder sheds."""
from __future__ import annotations

import asyncio
import threading
from typing import Sequence

import dns.name
import dns.rdatatype
import numpy as np

from codec.qname import text_to_qname
from nameserver.build import SemanticOptions
from nameserver.resolver.routecache import RouteCache
from nameserver.resolver.semcache import SemanticCache
from routing.errors import Shed
from tools.cmd_cluster import BatchedEncoder

TEXT = "is a verbal agreement to sell my car binding"


def name(form: str = "q") -> dns.name.Name:
    return dns.name.from_text(text_to_qname(TEXT, "semantic.root.", form))


class Gate:
    """An encoder that holds every run until the test opens it, counting the texts it embeds."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.open.wait(10)
        self.texts.extend(texts)
        return np.ones((len(texts), 384), dtype=np.float32)


async def test_the_loop_runs_while_a_question_is_embedded_and_both_names_share_it() -> None:
    gate = Gate()
    routes = RouteCache(SemanticCache(), embed=BatchedEncoder(gate, SemanticOptions()), embed_model="m")
    srv = asyncio.ensure_future(routes.question(name(), dns.rdatatype.SRV, ()))
    explain = asyncio.ensure_future(routes.question(name("explain"), dns.rdatatype.TXT, ()))
    for _ in range(20):  # the loop keeps turning while the encoder holds the run (inline, it could not)
        await asyncio.sleep(0)
    assert not srv.done() and not explain.done()
    gate.open.set()
    questions = await asyncio.gather(srv, explain)
    assert all(q is not None and q.vector is not None for q in questions)
    assert gate.texts == [TEXT]  # one embedding for both names
    again = await routes.question(name(), dns.rdatatype.SRV, ())
    assert again is not None and again.vector is not None and gate.texts == [TEXT]  # memoised


async def test_a_shed_question_goes_on_without_a_vector_and_is_embedded_next_time() -> None:
    calls: list[str] = []

    async def shedding(text: str) -> np.ndarray:
        calls.append(text)
        if len(calls) == 1:
            raise Shed("queue-full")
        return np.ones(384, dtype=np.float32)

    routes = RouteCache(SemanticCache(), embed=shedding, embed_model="m")
    first = await routes.question(name(), dns.rdatatype.SRV, ())
    assert first is not None and first.vector is None and routes.option_for(first) is None
    second = await routes.question(name(), dns.rdatatype.SRV, ())
    assert second is not None and second.vector is not None and len(calls) == 2
