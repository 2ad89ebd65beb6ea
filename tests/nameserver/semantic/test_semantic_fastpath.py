"""The semantic fast path: memoised per catalog snapshot, inline for keyword decisions, same bytes.

Answers are computed in-process through `DnsServer.respond` (the code path a UDP datagram takes)
so that "inline" can be observed exactly: `respond` returns the replies (a tuple) only when the
whole chain ran without suspending.
"""
from __future__ import annotations

import dns.edns
import dns.message
import dns.name
import dns.rdatatype
import dns.zone
import pytest
from helpers.reference import CLIENT, dnspython_render
from helpers.shipped import ZONEFILES  # noqa: E402

from codec import parse_semantic_name, text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname
from codec.errors import CodecError, TextTooLong
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.runner import ServerRunner
from nameserver.semantic.handler import _rebase
from nameserver.wire import PlainQuery, labels_to_wire
from routing.classifier import Classifier
from routing.descend import descend
from zones.catalog import ZoneCatalog, ZoneStore

APEX = "semantic.root."
LEGAL = dns.name.from_text("legal.semantic.root.")
KEYWORD_QUESTIONS = [  # our own wording: every step is decided by profile keywords
    "poem rhyme stanza poetry {}",
    "lawsuit litigation court trial plaintiff {}",
    "tax deduction irs tax return {}",
]
QUESTIONS = [
    "is a verbal agreement legally binding",
    "write a haiku about rain on a tin roof",
    "my python script throws a stack trace when parsing json",
    "what dose of ibuprofen is safe for a child",
    "should i pay off my mortgage or invest in index funds",
    "why is the sky blue",
    "!!!",
    # fits a name at the apex and under legal, not under litigation.legal: hashed form on the way
    "lawsuit litigation court trial plaintiff " + " ".join(f"w{i}x" for i in range(39)),
    "a long question about a lease dispute and the deposit the landlord kept " * 5,  # EDNS form
]

CHATTY_QUESTIONS = [  # our own wording: several sentences, topics mixed, so some steps go deep
    "I have been thinking about this for a while. My landlord kept the deposit. Can I sue him, "
    "and would the court also look at the rent I paid late?",
    "Quick one. I wrote a short story about a hacker. Is the python code in it believable? "
    "The plot needs a bug that crashes the server.",
    "Long day at the clinic. The patient asked about interest rates on her loan. "
    "Then she wanted to know how often to take her blood pressure pills.",
    "Nothing urgent. The stars looked bright tonight. Why do planets not twinkle? "
    "Also my telescope budget is small, should I save or use credit?",
]


def make_query(text: str, form: str = "q", rdtype: str = "SRV", qid: int = 7) -> bytes:
    try:
        qname, options = text_to_qname(text, APEX, form), []  # type: ignore[arg-type]
    except CodecError:
        qname = hashed_qname(text, APEX, form)  # type: ignore[arg-type]
        options = [dns.edns.GenericOption(TEXT_OPTION, encode_text_option(text))]
    message = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232, options=options)
    message.id = qid
    return message.to_wire()


@pytest.fixture
def runner(encoder, shipped) -> ServerRunner:
    store = ZoneStore()
    store.swap(shipped)
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False)
    runner = build_server(ServerOptions(config=config), store=store, encoder=encoder)
    runner.chain.warm()
    return runner


async def answer(runner: ServerRunner, wire: bytes) -> bytes:
    replies = runner.server.respond(wire, ("127.0.0.1", 5300), "udp")
    if type(replies) is not tuple:
        replies = await replies  # type: ignore[misc]
    assert len(replies) == 1
    return replies[0]


def fresh(catalog: ZoneCatalog) -> ZoneCatalog:
    """The same zones in a new snapshot (nothing memoised yet)."""
    return ZoneCatalog(zones=catalog.zones, generation=catalog.generation, sources=catalog.sources)


def all_queries() -> list[bytes]:
    forms = [("q", "SRV"), ("q", "TXT"), ("q", "CNAME"), ("q", "A"), ("explain", "TXT")]
    return [make_query(text, form, rdtype) for text in QUESTIONS for form, rdtype in forms]


async def test_memoised_answers_are_the_bytes_of_a_cold_catalog(runner) -> None:
    store = runner.store
    cold = []
    for wire in all_queries():
        store.swap(fresh(store.current))  # every answer computed from scratch
        cold.append(await answer(runner, wire))
    store.swap(fresh(store.current))
    for _ in range(2):  # the second round reads everything from the memo
        warm = [await answer(runner, wire) for wire in all_queries()]
        assert warm == cold


async def test_keyword_questions_stay_inline_off_the_batcher(runner) -> None:
    handler = runner.chain.get("semantic")
    for i in range(20):
        for question in KEYWORD_QUESTIONS:
            replies = runner.server.respond(make_query(question.format(i)), ("127.0.0.1", 5300), "udp")
            assert type(replies) is tuple  # answered without suspending: no task, no thread
            assert b"_llm" in replies[0]
    assert handler._batcher is None


async def test_a_new_catalog_is_not_answered_from_the_old_memo(runner) -> None:
    wire = make_query(KEYWORD_QUESTIONS[1].format(1))
    before = dns.message.from_wire(await answer(runner, wire))
    catalog = runner.store.current
    zone = catalog.zones[LEGAL]  # hosts litigation.legal, engine port 8112
    text = zone.to_text(relativize=False).replace(" 8112 ", " 9112 ")
    runner.store.swap(catalog.replacing({LEGAL: dns.zone.from_text(text, origin=LEGAL, relativize=False)}))
    after = dns.message.from_wire(await answer(runner, wire))
    ports = [
        [r.port for r in rrset] for m in (before, after) for rrset in m.answer if rrset.rdtype == dns.rdatatype.SRV
    ]
    assert ports == [[8112], [9112]]


@pytest.mark.parametrize("words", [1, 20, 46, 47, 48, 49])  # 47+: too long under a deeper zone
@pytest.mark.parametrize(
    "child", ["legal.semantic.root.", "contract.legal.semantic.root.", "Review.Code.semantic.root."]
)
def test_rebase_builds_the_name_the_codec_spells(words: int, child: str) -> None:
    text = " ".join(f"w{i}x" for i in range(words))
    parsed = parse_semantic_name(text_to_qname(text, APEX))
    node = dns.name.from_text(child)
    try:
        expected = dns.name.from_text(parsed.rebase(node.to_text()))
    except TextTooLong:
        expected = dns.name.from_text(hashed_qname(text, node.to_text(), parsed.form))
    got = _rebase(labels_to_wire(parsed.labels), parsed, text, node)
    assert got == expected.to_wire()


async def test_semantic_answers_take_the_fast_renderer_with_dnspython_bytes(runner) -> None:
    """Over the shipped zones: the bytes the server sends equal the chain's answer rendered by
    dnspython, for plain queries and those with the EDNS text option (both scanned, fast renderer)."""
    server = runner.server
    fast = 0
    for wire in all_queries():
        query = dns.message.from_wire(wire)
        for payload, transport in ((512, "udp"), (1232, "udp"), (1232, "tcp")):
            query.use_edns(0, 0, payload, options=query.options)
            sent = query.to_wire()
            (got,) = await server.handle(sent, CLIENT, transport)
            expected, was_reply = await dnspython_render(server, sent, transport)
            assert got == expected, query.to_text()
            fast += was_reply and PlainQuery.from_wire(sent) is not None
    assert fast >= len(QUESTIONS) * 3


def explained(reply: bytes) -> list[dict[str, str]]:
    message = dns.message.from_wire(reply)
    return [dict(raw.decode().partition("=")[::2] for raw in rdata.strings)
            for rrset in message.answer for rdata in rrset]


async def test_batched_walks_decide_as_a_direct_encoder_does(runner, encoder, shipped) -> None:
    # The server classifies on the event loop and embeds only through its batcher (the question,
    # then the deep stage's sentences); a classifier that calls the encoder directly decides the same.
    handler = runner.chain.get("semantic")
    direct = Classifier()
    stages = set()
    for text in CHATTY_QUESTIONS:
        spoken = " ".join(text.lower().split())
        hops = descend(shipped, handler.indexes, direct, spoken, dns.name.from_text(APEX), encoder)
        served = explained(await answer(runner, make_query(text, "explain", "TXT")))
        assert [(h["node"], h["stage"], h["choice"]) for h in served] == [
            (hop.node.to_text(), hop.decision.stage,
             hop.decision.child.to_text() if hop.decision.child is not None else "general") for hop in hops]
        stages.update(h["stage"] for h in served)
    # with the shipped heads (§7.1) the model-decided steps are `head` (one vector per question);
    # without them the deep stage also embeds sentences
    assert stages & {"deep", "head"} and handler._batcher is not None and handler._batcher.runs >= 1
