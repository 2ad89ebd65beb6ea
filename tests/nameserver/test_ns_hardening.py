"""Issue 11 items 1 and 7 over real sockets: expanding question text is refused before it is
normalised while plain queries go on being answered, and bad packets cost a few log lines that
never hold the question."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Iterator, Sequence

import dns.asyncquery
import dns.edns
import dns.exception
import dns.message
import dns.rcode
import numpy as np
import pytest
import zstandard
from helpers.shipped import ZONEFILES

from codec import text_to_qname
from codec.edns_text import EMBEDDING_OPTION, TEXT_OPTION, encode_embedding_option, hashed_qname, model_tag
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from routing.embedder import MODEL_NAME
from zones.catalog import ZoneStore
from zones.loader import load_directory

APEX = "semantic.root."
SECRET = "zorblax quuxifier unfathomable private matter"  # keywords decide nothing: it needs a vector
EXPANDING = ("\ufdfa" * 21000).encode()  # 63,000 octets; NFKC would make it 378,000 characters


class _Encoder:
    """Compiles the shipped indexes without the model; once `fail` is set, every run for a question
    raises (a handler bug whose message holds the question)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.fail and any("zorblax" in text for text in texts):
            raise RuntimeError(f"cannot embed {list(texts)}")
        rows = np.random.default_rng(7).normal(size=(len(texts), 384)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@asynccontextmanager
async def serving(encoder: _Encoder, log_questions: bool = False) -> AsyncIterator[tuple[str, int]]:
    store = ZoneStore()
    catalog, _ = load_directory(ZONEFILES)
    store.swap(catalog)
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False,
                          log_questions=log_questions, rrl_rate=0)  # floods from one client
    runner = build_server(ServerOptions(config=config), store=store, encoder=encoder)
    await runner.start()
    try:
        yield runner.addresses[0]
    finally:
        await runner.stop()


async def ask(address: tuple[str, int], name: str, rdtype: str, options: Sequence[dns.edns.Option] = ()
              ) -> dns.message.Message:
    """One UDP query (retried twice: a busy test machine may lose a 60 KB datagram)."""
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, request_payload=65535,
                                   options=list(options))
    for _ in range(2):
        try:
            return await dns.asyncquery.udp(query, address[0], port=address[1], timeout=3)
        except dns.exception.Timeout:
            continue
    return await dns.asyncquery.udp(query, address[0], port=address[1], timeout=3)


def text_option(payload: bytes) -> dns.edns.GenericOption:
    return dns.edns.GenericOption(TEXT_OPTION, payload)


async def test_expanding_text_is_refused_and_soa_still_answered() -> None:
    compressed = b"\x01" + zstandard.ZstdCompressor(write_content_size=True).compress(EXPANDING)
    name = hashed_qname("anything", APEX)
    async with serving(_Encoder()) as address:
        for i in range(30):
            attack = await ask(address, name, "SRV", [text_option(compressed if i % 2 else b"\x00" + EXPANDING)])
            assert attack.rcode() == dns.rcode.FORMERR
            (ede,) = [o for o in attack.options if o.otype == dns.edns.OptionType.EDE]
            assert ede.code == dns.edns.EDECode.INVALID_DATA and "NFKD" in (ede.text or "")
            soa = await ask(address, APEX, "SOA")
            assert soa.rcode() == dns.rcode.NOERROR and soa.answer


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Every line the server logs at INFO and above, formatted as `semdns serve` writes them."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(self.format(record).splitlines())

    handler = Collect(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def bad_packets(count: int) -> list[tuple[str, str, list[dns.edns.Option]]]:
    """Wrong-dimension embeddings, unknown text-option flags, expanding text, a truncated embedding."""
    question = text_to_qname(SECRET, APEX)
    tag = model_tag(MODEL_NAME)
    kinds = [
        (question, "SRV", [dns.edns.GenericOption(EMBEDDING_OPTION, encode_embedding_option(np.ones(7), tag))]),
        (hashed_qname(SECRET, APEX), "SRV", [text_option(b"\x80" + SECRET.encode())]),
        (hashed_qname(SECRET, APEX), "TXT", [text_option(b"\x00" + EXPANDING[:60000])]),
        (question, "SRV", [dns.edns.GenericOption(EMBEDDING_OPTION, b"\x00\x01")]),
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


async def test_bad_packets_cost_a_few_lines_without_the_question(server_log: list[str]) -> None:
    encoder = _Encoder()
    async with serving(encoder) as address:
        before = len(server_log)
        for name, rdtype, options in bad_packets(3000):
            await ask(address, name, rdtype, options)
        assert len(server_log) - before == 0  # the bad options are answered, never a fault

        encoder.fail = True  # now every question is a handler bug
        # one after the other: all at once, the encoder's admission would shed most of them
        replies = [await ask(address, text_to_qname(f"{SECRET} {i}", APEX), "SRV") for i in range(300)]
        assert {r.rcode() for r in replies} == {dns.rcode.SERVFAIL}
    logged = "\n".join(server_log[before:])
    records = [line for line in server_log[before:] if " ERROR " in line]
    assert len(records) <= 10 and len(server_log) - before < 40, logged  # 300 bugs: a burst, then 1/s
    assert logged.count(" in handle\n") == 1 and "RuntimeError\n" in logged  # frames once, not the message
    assert "zorblax" not in logged and "<question " in logged


async def test_questions_are_logged_when_the_operator_asks(server_log: list[str]) -> None:
    async with serving(_Encoder(fail=True), log_questions=True) as address:
        reply = await ask(address, text_to_qname(SECRET, APEX), "SRV")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert "zorblax" in "\n".join(server_log)
