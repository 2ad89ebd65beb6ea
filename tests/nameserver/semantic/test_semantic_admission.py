"""Encoder admission (issue 11 item 2): a bounded queue and a deadline in front of the encoder.

A fake encoder that blocks until the test opens its gate stands in for a slow model, so the
queue fills deterministically. Answers are computed in-process through `DnsServer.respond` (the
path of a UDP datagram), with the wire cache on.

    sem.test.       engine 8100; children law (court, judge), med (dose); th.keyword=0.6:
                    "court judge" decides alone, "court" alone does not
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Awaitable, Sequence

import dns.edns
import dns.message
import dns.rdatatype
import numpy as np
import pytest
from helpers.lawmed import APEX, handler_of, lawmed_runner

from codec import text_to_qname
from nameserver.build import SemanticOptions
from nameserver.errors import ConfigError
from nameserver.runner import ServerRunner
from nameserver.semantic.batcher import EmbedBatcher
from routing.descend import SHED_TTL
from routing.errors import Shed
from tools.cli import build_parser
from tools.cmd_serve import options_from_args

DECIDED = "the court judge said no {}"  # keywords decide alone: never waits for the encoder
WEAK = "what did the court say {}"  # one keyword, below th.keyword: needs the encoder
BLANK = "tell me something nice {}"  # no keyword at all: needs the encoder


class GatedEncoder:
    """Returns at once while the gate is open; once closed, each call blocks until it opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a call is inside the encoder
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        self.texts.extend(texts)
        vectors = np.ones((len(texts), 8), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def encoder() -> GatedEncoder:
    return GatedEncoder()


def make_runner(tmp_path: Path, encoder: GatedEncoder, queue: int = 64, deadline: float = 10.0) -> ServerRunner:
    runner = lawmed_runner(tmp_path, encoder, SemanticOptions(queue=queue, deadline=deadline))  # gate open
    encoder.texts.clear()
    return runner


def ask(runner: ServerRunner, text: str, form: str = "q") -> asyncio.Future[dns.message.Message]:
    """The answer to `text` (SRV for `q`, TXT for `explain`), as a future: it may wait."""
    rdtype = dns.rdatatype.SRV if form == "q" else dns.rdatatype.TXT
    wire = dns.message.make_query(text_to_qname(text, APEX, form), rdtype, use_edns=0).to_wire()

    async def answer() -> dns.message.Message:
        replies: Any = runner.server.respond(wire, ("127.0.0.1", 5300), "udp")
        if type(replies) is not tuple:
            replies = await replies
        return dns.message.from_wire(replies[0])

    return asyncio.ensure_future(answer())


async def settle(condition: Any, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def entered(encoder: GatedEncoder) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, encoder.entered.wait, 5)


def explain(reply: dns.message.Message) -> list[dict[str, str]]:
    records = [dict(s.decode().split("=", 1) for s in rd.strings) for rd in reply.answer[0]]
    return sorted(records, key=lambda r: int(r["hop"]))


def ede_texts(reply: dns.message.Message) -> list[str]:
    return [o.text for o in reply.options if o.otype == dns.edns.OptionType.EDE]


def last_cname(reply: dns.message.Message) -> tuple[str, int]:
    rrset = [r for r in reply.answer if r.rdtype == dns.rdatatype.CNAME][-1]
    return str(rrset[0].target), rrset.ttl


async def test_a_full_queue_sheds_the_excess_at_once(tmp_path: Path, encoder: GatedEncoder) -> None:
    runner = make_runner(tmp_path, encoder, queue=2)
    handler = handler_of(runner)
    encoder.gate.clear()
    running = ask(runner, BLANK.format(0))  # in the encoder (blocked)
    await entered(encoder)
    queued = [ask(runner, BLANK.format(1)), ask(runner, WEAK.format(2))]
    await settle(lambda: handler._batcher is not None and handler._batcher.queued == 2, "two texts queued")
    # The queue is full and the encoder still blocked: these are answered now, without it.
    general, guessed, decided = await asyncio.wait_for(asyncio.gather(
        ask(runner, BLANK.format(3)), ask(runner, WEAK.format(4), "explain"), ask(runner, DECIDED.format(5))), 5)
    assert last_cname(general) == ("_llm._tcp.sem.test.", SHED_TTL)  # no keyword: the node's general engine
    assert ede_texts(general) == ["encoder overloaded (queue-full) at sem.test.: general engine"]
    (hop,) = explain(guessed)
    assert (hop["stage"], hop["shed"], hop["choice"]) == ("shed", "queue-full", "law.sem.test.")
    assert guessed.answer[0].ttl == SHED_TTL
    assert last_cname(decided) == ("_llm._tcp.law.sem.test.", 300) and ede_texts(decided) == []
    assert not any(f.done() for f in [running, *queued])
    encoder.gate.set()
    for reply in await asyncio.wait_for(asyncio.gather(running, *queued), 5):
        assert ede_texts(reply) == [] and last_cname(reply)[1] == 300  # normal embed decisions
    assert handler._batcher is not None and handler._batcher.queued == 0
    after = await asyncio.wait_for(ask(runner, BLANK.format(3), "explain"), 5)  # not cached: decided anew
    assert explain(after)[0]["stage"] in {"head", "embed", "deep"} and "shed" not in explain(after)[0]
    assert ede_texts(await asyncio.wait_for(ask(runner, BLANK.format(3)), 5)) == []


async def test_a_passed_deadline_sheds_and_drops_the_queued_work(tmp_path: Path, encoder: GatedEncoder) -> None:
    runner = make_runner(tmp_path, encoder, deadline=0.2)
    handler = handler_of(runner)
    encoder.gate.clear()
    running = ask(runner, BLANK.format(0), "explain")
    await entered(encoder)
    waiting = ask(runner, WEAK.format(1), "explain")
    loop = asyncio.get_running_loop()
    started = loop.time()
    first, second = await asyncio.wait_for(asyncio.gather(running, waiting), 5)
    assert loop.time() - started < 1.0  # answered at the deadline, not when the encoder is done
    assert (explain(first)[0]["shed"], explain(first)[0]["choice"]) == ("deadline", "general")
    assert (explain(second)[0]["shed"], explain(second)[0]["choice"]) == ("deadline", "law.sem.test.")
    assert handler._batcher is not None and handler._batcher.queued == 0  # the backlog is gone
    encoder.gate.set()
    await settle(lambda: not handler._batcher._busy, "the blocked run to end")  # type: ignore[union-attr]
    assert encoder.texts == [BLANK.format(0)]  # the expired queued question was never embedded
    fresh = await asyncio.wait_for(ask(runner, WEAK.format(1), "explain"), 5)
    assert "shed" not in explain(fresh)[0] and explain(fresh)[0]["stage"] in {"head", "embed", "deep"}


async def test_a_cancelled_request_leaves_the_queue(encoder: GatedEncoder) -> None:
    """A caller gone (its task cancelled) takes its texts out of the queue: they are never embedded,
    and the others of its batch still get their own vectors."""
    batcher = EmbedBatcher(encoder, max_queue=8, deadline=10)
    encoder.gate.clear()
    running = asyncio.ensure_future(batcher.embed(["a"]))
    await entered(encoder)
    gone = asyncio.ensure_future(batcher.embed(["b", "c"]))
    kept = asyncio.ensure_future(batcher.embed(["d"]))
    await settle(lambda: batcher.queued == 3, "three texts queued")
    gone.cancel()
    await settle(lambda: batcher.queued == 1, "the cancelled request to leave")
    encoder.gate.set()
    assert len(await running) == 1 and len(await kept) == 1
    assert encoder.texts == ["a", "d"]
    await batcher.close()


async def test_an_empty_queue_takes_a_request_larger_than_its_bound(encoder: GatedEncoder) -> None:
    batcher = EmbedBatcher(encoder, max_queue=2, deadline=10)
    encoder.gate.clear()
    running = asyncio.ensure_future(batcher.embed(["a"]))
    await entered(encoder)
    six: Awaitable[np.ndarray] = asyncio.ensure_future(batcher.embed([f"s{i}" for i in range(6)]))
    await settle(lambda: batcher.queued == 6, "the six sentences queued")
    with pytest.raises(Shed, match="queue-full"):
        await batcher.embed(["one more"])
    encoder.gate.set()
    assert len(await running) == 1 and len(await six) == 6
    await batcher.close()


def test_the_flags_set_the_admission() -> None:
    args = build_parser().parse_args(["serve", "--zones", "z", "--encoder-queue", "16", "--encoder-deadline", "0.25"])
    semantic = options_from_args(args).semantic
    assert semantic is not None and (semantic.queue, semantic.deadline) == (16, 0.25)
    defaults = options_from_args(build_parser().parse_args(["serve", "--zones", "z"])).semantic
    assert defaults is not None and (defaults.queue, defaults.deadline) == (64, 0.5)
    for bad in ({"queue": 0}, {"deadline": 0.0}):
        with pytest.raises(ConfigError):
            SemanticOptions(**bad)  # type: ignore[arg-type]


def test_the_encoder_reads_as_many_tokens_as_the_flag_says(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`--encoder-max-tokens N` reaches the encoder the server loads (default `MAX_TOKENS`);
    out of range it is refused by the flag and by `SemanticOptions`."""
    from helpers.bagofwords import BagOfWords
    from helpers.shipped import ZONEFILES

    import routing.embedder
    from nameserver.build import ServerOptions, build_server
    from nameserver.config import ServerConfig

    args = build_parser().parse_args(["serve", "--zones", "z", "--encoder-max-tokens", "32"])
    semantic = options_from_args(args).semantic
    assert semantic is not None and semantic.max_tokens == 32
    defaults = options_from_args(build_parser().parse_args(["serve", "--zones", "z"])).semantic
    assert defaults is not None and defaults.max_tokens == routing.embedder.MAX_TOKENS == 40
    for bad in ("7", "257"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--zones", "z", "--encoder-max-tokens", bad])
        assert "between 8 and 256" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="encoder max tokens 300"):
        SemanticOptions(max_tokens=300)
    asked: dict[str, Any] = {}

    def load(variant: str, **kwargs: Any) -> BagOfWords:
        asked.update(kwargs)
        return BagOfWords()

    monkeypatch.setattr(routing.embedder, "load_embedder", load)
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False)
    build_server(ServerOptions(config=config, semantic=semantic))
    assert asked["max_tokens"] == 32
