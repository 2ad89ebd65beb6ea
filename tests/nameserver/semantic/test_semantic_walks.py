"""One classification walk serves a question's SRV and its `explain` TXT (`nameserver/semantic/walks.py`).

The SDK sends both in one round; each used to walk the hierarchy on its own (the encoder ran the
same text twice). Counted here: the memo's walks and the texts the encoder was given. Answers go
through `DnsServer.respond` (the path of a UDP datagram), with the wire cache off.

    sem.test.   children law (court, judge), med (dose); th.keyword=0.6: "court" alone needs the encoder
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Sequence

import dns.edns
import dns.message
import dns.name
import dns.rdatatype
import numpy as np
from helpers.lawmed import APEX, handler_of, lawmed_runner

from codec import text_to_qname
from codec.edns_text import EMBEDDING_OPTION, encode_embedding_option, model_tag
from nameserver.runner import ServerRunner
from nameserver.semantic.walks import WalkMemo
from routing.classifier import Decision
from routing.descend import Hop
from routing.embedder import MODEL_NAME

QUESTION = "what did the court say about my lease"  # one keyword, below th.keyword: needs the encoder


class CountingEncoder:
    """Unit vectors of 384 values from a hash of each text; records every text it is given."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        vectors = np.stack([np.random.default_rng(sum(map(ord, t))).normal(size=384) for t in texts])
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def make_runner(tmp_path: Path, encoder: CountingEncoder) -> ServerRunner:
    runner = lawmed_runner(tmp_path, encoder, wire_cache=False)
    encoder.texts.clear()
    return runner


async def ask(runner: ServerRunner, text: str, form: str = "q",
              options: Sequence[dns.edns.Option] = ()) -> dns.message.Message:
    rdtype = dns.rdatatype.SRV if form == "q" else dns.rdatatype.TXT
    wire = dns.message.make_query(text_to_qname(text, APEX, form), rdtype, use_edns=0, options=list(options)).to_wire()
    replies: Any = runner.server.respond(wire, ("127.0.0.1", 5300), "udp")
    if type(replies) is not tuple:
        replies = await replies
    return dns.message.from_wire(replies[0])


def chosen(srv: dns.message.Message, explain: dns.message.Message) -> tuple[str, str]:
    """(where the SRV's CNAME chain ends, the explain's last choice)."""
    end = [r for r in srv.answer if r.rdtype == dns.rdatatype.CNAME][-1][0].target.to_text()
    last = dict(s.decode().split("=", 1) for s in list(explain.answer[0])[-1].strings)
    return end, last["choice"]


async def test_the_srv_and_the_explain_of_one_question_share_one_walk(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    runner = make_runner(tmp_path, encoder)
    handler = handler_of(runner)
    srv, explain = await asyncio.gather(ask(runner, QUESTION), ask(runner, QUESTION, "explain"))
    assert handler.walks.runs == 1 and handler.walks.shared == 1
    assert encoder.texts.count(QUESTION) == 1  # once, not once per query
    end, choice = chosen(srv, explain)
    assert end == "_llm._tcp." + (APEX if choice == "general" else choice)
    # asked again right after (the two queries of a round served one after the other): the same walk
    await ask(runner, QUESTION, "explain")
    assert handler.walks.runs == 1 and encoder.texts.count(QUESTION) == 1


async def test_other_texts_and_other_client_embeddings_walk_on_their_own(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    runner = make_runner(tmp_path, encoder)
    handler = handler_of(runner)
    vector = np.full(384, 1 / np.sqrt(384), dtype=np.float32)
    option = dns.edns.GenericOption(EMBEDDING_OPTION, encode_embedding_option(vector, model_tag(MODEL_NAME)))
    await asyncio.gather(ask(runner, QUESTION), ask(runner, QUESTION + " today"),
                         ask(runner, QUESTION, "explain", options=[option]))
    # a walk routed by a client's vector is that client's alone (as the wire cache keys on its bytes)
    assert handler.walks.runs == 3 and handler.walks.shared == 0


def hop(shed: str | None = None) -> Hop:
    return Hop(dns.name.from_text(APEX), Decision(None, "none", 0.0, None, ()), 300, shed)


async def test_a_shed_walk_is_shared_only_while_it_runs_and_a_stale_one_not_at_all() -> None:
    memo = WalkMemo(linger=60.0)
    gate = asyncio.Event()

    async def shed_walk() -> tuple[Hop, ...]:
        await gate.wait()
        return (hop("deadline"),)

    first = asyncio.ensure_future(memo.walk(b"k", shed_walk))
    second = asyncio.ensure_future(memo.walk(b"k", shed_walk))
    await asyncio.sleep(0)
    gate.set()
    assert await first == await second == (hop("deadline"),)
    assert memo.runs == 1 and memo.shared == 1
    await memo.walk(b"k", shed_walk)  # finished and shed: walked again
    assert memo.runs == 2

    stale = WalkMemo(linger=0.0)

    async def walk() -> tuple[Hop, ...]:
        return (hop(),)

    await stale.walk(b"k", walk)
    await stale.walk(b"k", walk)
    assert stale.runs == 2 and stale.shared == 0


async def test_a_query_waiting_on_a_cancelled_walk_walks_itself() -> None:
    memo = WalkMemo()
    never = asyncio.Event()

    async def stuck() -> tuple[Hop, ...]:
        await never.wait()
        return (hop(),)

    async def walk() -> tuple[Hop, ...]:
        return (hop(),)

    owner = asyncio.ensure_future(memo.walk(b"k", stuck))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(memo.walk(b"k", walk))
    await asyncio.sleep(0)
    owner.cancel()  # its client is gone
    assert await asyncio.wait_for(waiter, 5) == (hop(),)
    assert memo.runs == 2 and memo.shared == 0
