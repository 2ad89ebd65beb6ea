"""The semantic handler on a real server (loopback, free port) over the shipped zones."""
from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from codec import text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname
from nameserver.semantic.batcher import EmbedBatcher

APEX = "semantic.root."


async def ask(address, name: str, rdtype: int, options=()) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, options=list(options))
    return await dns.asyncquery.udp(query, address[0], port=address[1], timeout=10)


def ede_texts(reply: dns.message.Message) -> list[str]:
    return [o.text for o in reply.options if o.otype == dns.edns.OptionType.EDE]


def cnames(reply: dns.message.Message) -> list[tuple[str, str, int]]:
    return [(str(r.name), str(r[0].target), r.ttl) for r in reply.answer if r.rdtype == dns.rdatatype.CNAME]


async def test_srv_chain_down_to_the_engine(shipped_server) -> None:
    name = text_to_qname("is a verbal agreement legally binding", APEX)
    reply = await ask(shipped_server, name, dns.rdatatype.SRV)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    chain = cnames(reply)
    assert [target for _, target, _ in chain] == [
        name.replace(".q.semantic.root.", ".q.legal.semantic.root."),
        name.replace(".q.semantic.root.", ".q.contract.legal.semantic.root."),
        "_llm._tcp.contract.legal.semantic.root.",
    ]
    assert {ttl for _, _, ttl in chain} == {300}  # route-ttl of the shipped zones
    srv = reply.find_rrset(reply.answer, dns.name.from_text("_llm._tcp.contract.legal.semantic.root."),
                           dns.rdataclass.IN, dns.rdatatype.SRV)
    assert srv[0].port == 8111
    assert any(r.rdtype == dns.rdatatype.A and str(r.name) == "llm1.contract.legal.semantic.root."
               for r in reply.additional)


async def test_txt_ends_in_dns_sd_attributes(shipped_server) -> None:
    reply = await ask(shipped_server, text_to_qname("write a limerick about a lazy cat", APEX), dns.rdatatype.TXT)
    assert cnames(reply)[-1][1] == "_llm._tcp.poetry.creative.semantic.root."
    txt = [r for r in reply.answer if r.rdtype == dns.rdatatype.TXT][0]
    assert b"txtvers=1" in txt[0].strings


@pytest.mark.parametrize("name", ["q.semantic.root.", text_to_qname("how do vaccines work", APEX),
                                  "work.q.semantic.root."])
async def test_address_queries_under_q_are_nodata(shipped_server, name) -> None:
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS):
        reply = await ask(shipped_server, name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer == []
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


async def test_explain_shows_stage_choice_and_candidates(shipped_server) -> None:
    name = text_to_qname("how much ibuprofen can I take for a toothache", APEX, "explain")
    reply = await ask(shipped_server, name, dns.rdatatype.TXT)
    records = [dict(s.decode().split("=", 1) for s in rdata.strings) for rdata in reply.answer[0]]
    first = next(r for r in records if r["hop"] == "1")
    assert first["node"] == APEX and first["choice"] == "medical.semantic.root."
    assert first["stage"] in {"keyword", "exemplar", "head", "embed", "deep"}
    assert 0 < float(first["confidence"]) <= 1
    assert first["runner-up"].split(":")[0].endswith(".semantic.root.")
    assert len(first["candidates"].split(",")) == 6
    assert any(r["node"] == "medical.semantic.root." for r in records)


async def test_only_punctuation_goes_to_the_general_engine(shipped_server) -> None:
    reply = await ask(shipped_server, text_to_qname("?!?", APEX), dns.rdatatype.SRV)
    assert reply.rcode() == dns.rcode.NOERROR
    assert cnames(reply)[0][1] == "_llm._tcp.semantic.root."
    assert ede_texts(reply) and "no words" in ede_texts(reply)[0]


async def test_undecodable_labels_are_nxdomain_with_ede(shipped_server) -> None:
    reply = await ask(shipped_server, "abcq9.q.semantic.root.", dns.rdatatype.SRV)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert "unknown escape" in ede_texts(reply)[0]


async def test_node_without_profiles_or_engine_is_plain_dns(shipped_server) -> None:
    # No routing and no engine at ns1: the name is an ordinary one, answered by the authority.
    reply = await ask(shipped_server, "hello.q.ns1.semantic.root.", dns.rdatatype.SRV)
    assert reply.rcode() == dns.rcode.NXDOMAIN and not ede_texts(reply)
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


async def test_leaf_zone_answers_with_its_engine(shipped_server) -> None:
    reply = await ask(shipped_server, text_to_qname("what is a void contract", "contract.legal.semantic.root."),
                      dns.rdatatype.SRV)
    assert cnames(reply)[0][1] == "_llm._tcp.contract.legal.semantic.root."
    assert reply.answer[-1].rdtype == dns.rdatatype.SRV


async def test_hashed_name_with_text_option(shipped_server) -> None:
    text = "My Python program reads a big CSV file and then crashes with MemoryError. " * 4
    name = hashed_qname(text, APEX)
    option = dns.edns.GenericOption(TEXT_OPTION, encode_text_option(text))
    reply = await ask(shipped_server, name, dns.rdatatype.SRV, [option])
    assert cnames(reply)[0][1] == name.replace(".q.semantic.root.", ".q.code.semantic.root.")
    assert reply.answer[-1].rdtype == dns.rdatatype.SRV


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (None, "needs the text"),
        (b"\x80hello", "unknown flag"),
        (b"\x00\xff\xfe", "UTF-8"),
        (b"\x00   ", "empty"),
        (b"\x00another question entirely", "does not match"),
    ],
)
async def test_bad_text_option_is_formerr(shipped_server, payload, needle) -> None:
    options = [] if payload is None else [dns.edns.GenericOption(TEXT_OPTION, payload)]
    reply = await ask(shipped_server, hashed_qname("a question", APEX), dns.rdatatype.SRV, options)
    assert reply.rcode() == dns.rcode.FORMERR
    assert needle in ede_texts(reply)[0]


def text_too_long_for(deeper: str) -> str:
    """A legal question whose name fits under the apex but not under `deeper`."""
    from codec import TextTooLong

    words = "my landlord kept the deposit and the court date is set but the judge".split()
    text = "after the eviction"
    for i in range(200):
        longer = f"{text} {words[i % len(words)]}"
        try:
            text_to_qname(longer, deeper)
        except TextTooLong:
            text_to_qname(longer, APEX)  # still fits the apex
            return longer
        text = longer
    raise AssertionError("never too long")


async def test_long_text_switches_to_the_hashed_form_deeper(shipped_server) -> None:
    name = text_to_qname(text_too_long_for("legal.semantic.root."), APEX)
    reply = await ask(shipped_server, name, dns.rdatatype.SRV)
    assert reply.rcode() == dns.rcode.NOERROR
    targets = [target for _, target, _ in cnames(reply)]
    assert targets[0].startswith("h-") and targets[0].endswith(".q.legal.semantic.root.")
    assert targets[-1].startswith("_llm._tcp.") and targets[-1].endswith("legal.semantic.root.")


async def test_batcher_merges_concurrent_requests(encoder) -> None:
    batcher = EmbedBatcher(encoder, max_batch=8)
    texts = [f"question number {i} about taxes" for i in range(12)]
    results = await asyncio.gather(*(batcher.embed([t]) for t in texts))
    assert batcher.runs < len(texts)
    direct = encoder.embed(texts)
    for got, want in zip(results, direct):
        assert float(got[0] @ want) > 0.999
    await batcher.close()


async def test_embedding_option_replaces_the_encoder(shipped_server, encoder) -> None:
    from codec.edns_text import EMBEDDING_OPTION, encode_embedding_option, model_tag
    from routing.embedder import MODEL_NAME

    name = text_to_qname("tell me about this one", APEX, "explain")  # no keyword, vague
    vector = encoder.embed(["Why do stars twinkle but planets do not?"])[0]
    good = dns.edns.GenericOption(EMBEDDING_OPTION, encode_embedding_option(vector, model_tag(MODEL_NAME)))
    reply = await ask(shipped_server, name, dns.rdatatype.TXT, [good])
    first = next(dict(s.decode().split("=", 1) for s in r.strings) for r in reply.answer[0] if b"hop=1" in r.strings)
    assert first["choice"] == "science.semantic.root."
    other = dns.edns.GenericOption(EMBEDDING_OPTION, encode_embedding_option(vector, model_tag("another-model")))
    reply = await ask(shipped_server, name, dns.rdatatype.TXT, [other])  # ignored: embedded here instead
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer


async def test_a_huge_repetitive_question_is_routed_by_its_first_characters(shipped_server) -> None:
    """A 64,000-character question of legal keywords over and over fits one datagram (the EDNS
    text option is compressed). Its ~9,000 keyword matches once held the event loop
    for seconds (resolved pairwise, quadratic), so a SOA asked just after it went unanswered.
    Routing reads its first `MAX_TEXT_CHARS` characters: it is explained exactly as they are,
    and the server keeps answering."""
    from routing.pieces import MAX_TEXT_CHARS

    text = "sued in court " * 4572  # 64,008 characters
    option = dns.edns.GenericOption(TEXT_OPTION, encode_text_option(text))
    assert len(option.data) < 1000

    async def soa_soon() -> dns.message.Message:
        await asyncio.sleep(0.05)
        query = dns.message.make_query(APEX, dns.rdatatype.SOA)
        return await dns.asyncquery.udp(query, shipped_server[0], port=shipped_server[1], timeout=1)

    reply, soa = await asyncio.gather(ask(shipped_server, hashed_qname(text, APEX), dns.rdatatype.SRV, [option]),
                                      soa_soon())
    assert soa.rcode() == dns.rcode.NOERROR and soa.answer
    assert reply.rcode() == dns.rcode.NOERROR
    assert cnames(reply)[0][1].endswith(".q.legal.semantic.root.")

    async def explained(question: str) -> list[bytes]:
        payload = dns.edns.GenericOption(TEXT_OPTION, encode_text_option(question))
        answer = await ask(shipped_server, hashed_qname(question, APEX, "explain"), dns.rdatatype.TXT, [payload])
        return [b" ".join(record.strings) for rrset in answer.answer for record in rrset]

    steps = await explained(text)
    assert steps == await explained(text[:MAX_TEXT_CHARS])
    assert not any(b"stage=shed" in step for step in steps)  # the walk was not held past its deadline
