"""Fuzzing the server in process (issue 11 item 8): generated and mutated packets
(`tools/fuzzcorpus.py`) through `DnsServer.respond` for UDP and TCP and through the TCP framing of
`nameserver/tcp.py`, against the shipped zones with semantic routing (a fake encoder), signed
UPDATE and transfers on.

Every packet must be answered without an escaped exception and without the chain's catch-all
("handler failed", which turns a handler fault into SERVFAIL); every reply must parse with
dnspython and echo the query's ID; afterwards the SOA of the apex is still answered. Bounded and
fast; the long run over real sockets is `semdns bench fuzz` (tools/bench_fuzz.py).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import numpy as np
import pytest
from helpers.shipped import APEX, ZONEFILES
from hypothesis import given, settings
from hypothesis import strategies as st

from nameserver.build import DynamicOptions, SemanticOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.request import Transport
from nameserver.runner import ServerRunner
from nameserver.tcp import TcpLimits, TcpListener
from routing.embedder import DIMENSION
from tools.cli import main
from tools.fuzzcorpus import KEY_NAMES, Corpus, mutate, with_id
from zones.tsig import generate_key, load_keyring, write_key_file

CLIENT = ("127.0.0.1", 40000)
SEEDS = st.integers(min_value=0, max_value=2**64 - 1)


class _FakeEncoder:
    """Unit vectors of the model's shape from a hash of the text: fast, deterministic."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")
            row = np.random.default_rng(seed).standard_normal(DIMENSION)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMENSION)


class _Faults(logging.Handler):
    """Collects every ERROR the server logs (its catch-all logs "handler failed" at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Fuzzed:
    """A loaded server, its event loop and what went wrong so far."""

    runner: ServerRunner
    loop: asyncio.AbstractEventLoop
    corpus: Corpus
    faults: _Faults
    loop_errors: list[dict] = field(default_factory=list)

    def respond(self, wire: bytes, transport: Transport) -> tuple[bytes, ...]:
        """The replies of the server to `wire`, called on the loop as the listeners call it."""
        return self.loop.run_until_complete(self._respond(wire, transport))

    async def _respond(self, wire: bytes, transport: Transport) -> tuple[bytes, ...]:
        replies = self.runner.server.respond(wire, CLIENT, transport)
        return replies if type(replies) is tuple else await replies  # type: ignore[misc]

    def check(self, wire: bytes, replies: Sequence[bytes]) -> None:
        """Each reply parses and echoes the ID; the catch-all and the loop's handler stayed quiet."""
        assert not self.faults.records, [r.getMessage() for r in self.faults.records]
        assert not self.loop_errors, self.loop_errors
        for reply in replies:
            dns.message.from_wire(reply, keyring=False, ignore_trailing=False)
            assert reply[:2] == wire[:2], (wire.hex(), reply.hex())

    def soa_answered(self) -> None:
        """The apex SOA is still answered with NOERROR over UDP and TCP."""
        query = dns.message.make_query(APEX, "SOA")
        for transport in ("udp", "tcp"):
            (reply,) = self.respond(query.to_wire(), transport)
            answer = dns.message.from_wire(reply)
            assert answer.rcode() == dns.rcode.NOERROR
            assert answer.answer and answer.answer[0].rdtype == dns.rdatatype.SOA


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("fuzz")
    key_file = tmp / "keys.conf"
    write_key_file(key_file, "".join(generate_key(name) for name in KEY_NAMES))
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False, rrl_rate=0)
    options = ServerOptions(config=config, semantic=SemanticOptions(),
                            dynamic=DynamicOptions(tsig_keys=key_file, journal=Path(tmp / "journal")))
    runner = build_server(options, encoder=_FakeEncoder())
    runner.load()
    loop = asyncio.new_event_loop()
    faults = _Faults()
    logger = logging.getLogger("nameserver")
    logger.addHandler(faults)
    state = Fuzzed(runner, loop, Corpus(load_keyring(key_file)), faults)
    loop.set_exception_handler(lambda _loop, context: state.loop_errors.append(context))
    try:
        yield state
        state.soa_answered()
    finally:
        logger.removeHandler(faults)
        loop.close()


@settings(max_examples=1000, deadline=None)
@given(seed=SEEDS, tcp=st.booleans())
def test_generated_packets_are_answered_or_dropped_cleanly(fuzzed: Fuzzed, seed: int, tcp: bool) -> None:
    rng = random.Random(seed)
    wire = fuzzed.corpus.packet(rng)
    fuzzed.check(wire, fuzzed.respond(wire, "tcp" if tcp else "udp"))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), tcp=st.booleans())
def test_arbitrary_octets_are_answered_or_dropped_cleanly(fuzzed: Fuzzed, data: bytes, tcp: bool) -> None:
    fuzzed.check(data, fuzzed.respond(data, "tcp" if tcp else "udp"))


@settings(max_examples=250, deadline=None)
@given(seed=SEEDS)
def test_tcp_framing_survives_split_and_mangled_streams(fuzzed: Fuzzed, seed: int) -> None:
    """Packets framed on one connection, cut into random chunks, sometimes with a wrong length:
    every framed reply parses and answers one of the queries sent."""
    rng = random.Random(seed)
    wires = [with_id(fuzzed.corpus.packet(rng), index) for index in range(rng.randint(1, 8))]
    stream = b"".join(struct.pack("!H", len(w)) + w for w in wires)
    if rng.random() < 0.3:
        stream = mutate(stream, rng)
    fuzzed.loop.run_until_complete(_feed(fuzzed, stream, rng))
    assert not fuzzed.faults.records, [r.getMessage() for r in fuzzed.faults.records]
    assert not fuzzed.loop_errors, fuzzed.loop_errors


async def _feed(fuzzed: Fuzzed, stream: bytes, rng: random.Random) -> None:
    listener = TcpListener(fuzzed.runner.server, TcpLimits())
    connection = listener.protocol()
    transport = _Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    at = 0
    while at < len(stream):
        step = rng.randint(1, 700)
        connection.data_received(stream[at : at + step])
        at += step
    connection.eof_received()
    while connection._tasks:
        await asyncio.sleep(0)
    connection.connection_lost(None)
    out = bytes(transport.written)
    while out:
        assert len(out) >= 2
        (size,) = struct.unpack_from("!H", out)
        reply, out = out[2 : 2 + size], out[2 + size :]
        assert len(reply) == size
        dns.message.from_wire(reply, keyring=False)


class _Transport:
    """What a `TcpConnection` needs of an asyncio transport; keeps what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str) -> object:
        return CLIENT if name == "peername" else None

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        """Reading is driven by the test; nothing to pause."""

    def resume_reading(self) -> None:
        """Reading is driven by the test; nothing to resume."""

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Everything written is kept at once: no back-pressure to signal."""

    def get_write_buffer_size(self) -> int:
        return 0


def test_known_key_signs_some_updates(fuzzed: Fuzzed) -> None:
    """The corpus really exercises signed UPDATE: some of its UPDATEs carry a TSIG the server knows."""
    rng = random.Random(11)
    keys = {key.name for key in fuzzed.corpus.keys}
    signed = 0
    for _ in range(300):
        wire = fuzzed.corpus.update(rng)
        try:
            message = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            continue
        signed += message.keyname in keys if message.had_tsig else 0
    assert signed > 0
    assert dns.name.from_text(KEY_NAMES[0]) in keys


def test_bench_fuzz_runs_over_sockets(capsys: pytest.CaptureFixture[str]) -> None:
    """`semdns bench fuzz` end to end, briefly (a plain server: no encoder)."""
    assert main(["bench", "fuzz", "--zones", str(ZONEFILES), "--packets", "400", "--no-semantic",
                 "--soa-queries", "50"]) == 0
    out = capsys.readouterr().out
    assert "packets 400" in out and "unparsable 0" in out and "SERVFAIL 0" in out
    assert "'Traceback' 0  'handler failed' 0" in out
    assert "server alive after the run: yes" in out
    assert "50 answered, 0 not NOERROR/lost" in out
