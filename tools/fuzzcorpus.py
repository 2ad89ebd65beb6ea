"""Generated and mutated DNS packets for fuzzing the server (issue 11 item 8).

One generator shared by the suite (`tests/nameserver/test_ns_fuzz.py`, a bounded hypothesis run
in process) and `semdns bench fuzz` (the long run over real sockets): `Corpus(keyring).packet(rng)`
draws one packet from a `random.Random`, so a seed reproduces it.

Kinds, each then mutated at the byte level about a third of the time (truncation, bit flips,
header counts, spliced bytes, compression loops):

    query     names of the shipped hierarchy and random ones, any type and class, random flags
    edns      random EDNS versions, flags, payload sizes and options (and several OPT records)
    semantic  q/explain names, options 65001 (text: valid, zstd, bombs, bad flags, bad UTF-8,
              huge) and 65002 (embedding: wrong model, wrong dimension, NaN/inf scale, short)
    update    opcode 5: signed with the server's key or a wrong one, garbage TSIG, garbage zone
              sections, random prerequisite and update records
    ixfr      IXFR with a good or garbage SOA (or anything else) in the authority section
    axfr      AXFR, sometimes with records where none belong
    notify    opcode 4 with or without a SOA in the answer
    loop      names that are compression loops (self-pointers, two-label cycles, forward pointers)
    raw       random bytes
"""
from __future__ import annotations

import random
import struct
from typing import Callable, Mapping

import dns.edns
import dns.message
import dns.name
import dns.opcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import numpy as np
import zstandard

from codec.edns_text import (
    EMBEDDING_OPTION,
    TEXT_OPTION,
    encode_embedding_option,
    encode_text_option,
    hashed_qname,
    model_tag,
)
from codec.qname import Form, text_to_qname
from routing.embedder import MODEL_NAME

APEX = "semantic.root."
KEY_NAMES: tuple[str, ...] = ("engine.semantic.root.", "engine.legal.semantic.root.")  # keys a fuzzed server has
ZONES: tuple[str, ...] = (
    APEX,
    "legal.semantic.root.",
    "contract.legal.semantic.root.",
    "medical.semantic.root.",
    "diagnosis.medical.semantic.root.",
    "code.semantic.root.",
    "science.semantic.root.",
    "creative.semantic.root.",
    "finance.semantic.root.",
)
NAMES: tuple[str, ...] = (
    *ZONES,
    "_llm._tcp.semantic.root.",
    "llm1.semantic.root.",
    "ns1.semantic.root.",
    "_route.semantic.root.",
    "tax._route.finance.semantic.root.",
    "_codec.finance.semantic.root.",
    "version.bind.",
    "id.server.",
    "example.com.",
    ".",
)
WORDS: tuple[str, ...] = (
    "contract", "breach", "tax", "invoice", "dose", "symptom", "python", "compile", "poem", "story",
    "quantum", "orbit", "court", "appeal", "fever", "loan", "the", "is", "how", "what", "why", "a",
)
QTYPES: tuple[int, ...] = (1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 250, 251, 252, 255, 65, 64, 99, 0, 65535)
QCLASSES: tuple[int, ...] = (1, 1, 1, 1, 3, 4, 254, 255, 0, 2, 65535)
MODEL_TAG = model_tag(MODEL_NAME)
DIMENSION = 384
MAX_UDP_WIRE = 65507  # the largest UDP payload on IPv4
ZSTD_BOMB = zstandard.ZstdCompressor().compress(b"a" * (8 << 20))  # 8 MiB of text in a few hundred octets


class Corpus:
    """Draws packets; `keyring` (the server's TSIG keys) lets some UPDATEs be validly signed."""

    def __init__(self, keyring: Mapping[dns.name.Name, dns.tsig.Key] | None = None) -> None:
        self.keys = list((keyring or {}).values())
        self.kinds: tuple[tuple[Callable[[random.Random], bytes], int], ...] = (
            (self.query, 4), (self.edns, 3), (self.semantic, 4), (self.update, 3), (self.ixfr, 2),
            (self.axfr, 1), (self.notify, 1), (self.loop, 1), (raw, 1),
        )
        self._weights = [weight for _, weight in self.kinds]

    def packet(self, rng: random.Random) -> bytes:
        """One packet (at most `MAX_UDP_WIRE` octets)."""
        (make,) = rng.choices([kind for kind, _ in self.kinds], self._weights)
        wire = make(rng)
        if rng.random() < 0.35:
            wire = mutate(wire, rng)
        return wire[:MAX_UDP_WIRE]

    # -- kinds ----------------------------------------------------------------------------------
    def query(self, rng: random.Random) -> bytes:
        message = dns.message.make_query(name(rng), dns.rdatatype.RdataType.make(rng.choice(QTYPES)),
                                         dns.rdataclass.RdataClass.make(rng.choice(QCLASSES)))
        message.flags = _flags(rng)
        if rng.random() < 0.5:
            message.use_edns(0, payload=rng.choice((512, 1232, 4096)))
        return _wire(message, rng)

    def edns(self, rng: random.Random) -> bytes:
        options = [(rng.choice((3, 8, 10, 11, 12, 15, 65001, 65002, rng.randrange(65536))), _bytes(rng, 40))
                   for _ in range(rng.randrange(5))]
        opts = [opt_record(rng.randrange(65536), rng.randrange(256), rng.randrange(256), rng.randrange(65536), options)
                for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        question = question_wire(name(rng), rng.choice(QTYPES), rng.choice(QCLASSES))
        return header(rng.randrange(65536), _flags(rng), 1, 0, 0, len(opts)) + question + b"".join(opts)

    def semantic(self, rng: random.Random) -> bytes:
        zone = rng.choice(ZONES)
        text = " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))
        form: Form = rng.choice(("q", "q", "explain"))
        options: list[tuple[int, bytes]] = []
        if rng.random() < 0.5:
            qname = text_to_qname(text, zone, form)
        else:
            qname = hashed_qname(text, zone, form)
            options.append((TEXT_OPTION, text_option(rng, text)))
        if rng.random() < 0.5:
            options.append((EMBEDDING_OPTION, embedding_option(rng)))
        if rng.random() < 0.1:
            options.append((rng.choice((TEXT_OPTION, EMBEDDING_OPTION)), _bytes(rng, 64)))
        qtype = rng.choice((33, 33, 33, 16, 1, 255, rng.randrange(65536)))
        opt = opt_record(rng.choice((512, 1232, 4096, 65535)), 0, rng.choice((0, 0, 0, 1)), rng.choice((0, 0x8000)),
                         options)
        return header(rng.randrange(65536), _flags(rng), 1, 0, 0, 1) + question_wire(qname, qtype, 1) + opt

    def update(self, rng: random.Random) -> bytes:
        choice = rng.random()
        key = rng.choice(self.keys) if self.keys and choice < 0.35 else None
        if key is not None and rng.random() < 0.8:
            zone = key.name.parent().to_text()  # the zone the key may update
        else:
            zone = rng.choice((*ZONES, "example.com.", "nowhere."))
        if rng.random() < 0.3:  # garbage zone section: several or none, odd type and class
            count = rng.choice((0, 2, 3))
            zones = b"".join(question_wire(rng.choice(NAMES), rng.choice(QTYPES), rng.choice(QCLASSES))
                             for _ in range(count))
            records = [_random_rr(rng) for _ in range(rng.randrange(4))]
            return header(rng.randrange(65536), 5 << 11, count, 0, len(records), 0) + zones + b"".join(records)
        message = dns.update.UpdateMessage(zone)
        owner = dns.name.from_text(rng.choice(("", "engine1.", "_llm._tcp.", "x.y.")) + zone)
        for _ in range(rng.randrange(6)):
            action = rng.choice(("add", "delete", "replace", "present", "absent"))
            if action == "present":
                message.present(owner)
            elif action == "absent":
                message.absent(owner, rng.choice(("A", "SRV")))
            elif action == "delete":
                message.delete(owner, *rng.choice(((), ("A",), ("SRV", "10 10 8100 llm1." + zone))))
            else:
                rdtype, rdata = rng.choice((("A", "127.0.0.9"), ("SRV", "10 10 8100 llm1." + zone),
                                            ("TXT", '"v=semroute1"'), ("SOA", "ns1 h 1 2 3 4 5"),
                                            ("NS", "ns9." + zone), ("CNAME", "x.")))
                getattr(message, action)(owner, rng.randrange(0, 86400), rdtype, rdata)
        if key is not None:
            message.use_tsig(key)
        elif choice < 0.55:
            message.use_tsig(dns.tsig.Key(rng.choice(("engine.semantic.root.", "nokey.")), _bytes(rng, 32) or b"k"))
        wire = _wire(message, rng)
        if 0.55 <= choice < 0.65:  # a TSIG record of random octets
            tsig = rr(owner_wire("engine.semantic.root."), 250, 255, 0, _bytes(rng, 80))
            wire = _bump(wire, 10) + tsig
        return wire

    def ixfr(self, rng: random.Random) -> bytes:
        zone = rng.choice(ZONES)
        question = question_wire(zone, 251, rng.choice((1, 1, 1, 3, 255)))
        serial = rng.choice((0, 1, 2026010100, 2**31, 2**32 - 1, rng.randrange(2**32)))
        good = struct.pack("!IIIII", serial, 3600, 600, 86400, 60)
        soa = owner_wire("ns1." + zone) + owner_wire("h." + zone) + good
        rdata = rng.choice((soa, soa[: rng.randrange(len(soa))], _bytes(rng, 30), good, b""))
        records = [rr(owner_wire(rng.choice((zone, rng.choice(NAMES)))),
                      rng.choice((6, 6, 6, 1, 255)), rng.choice((1, 1, 255)), 0, rdata)
                   for _ in range(rng.choice((0, 1, 1, 1, 2)))]
        return header(rng.randrange(65536), 0, 1, 0, len(records), 0) + question + b"".join(records)

    def axfr(self, rng: random.Random) -> bytes:
        zone = rng.choice(ZONES)
        records = [_random_rr(rng) for _ in range(rng.choice((0, 0, 0, 1)))]
        return (header(rng.randrange(65536), _flags(rng) & ~0x7800, 1, len(records), 0, 0)
                + question_wire(zone, 252, rng.choice((1, 1, 255, 3))) + b"".join(records))

    def notify(self, rng: random.Random) -> bytes:
        zone = rng.choice((*ZONES, "example.com."))
        message = dns.message.make_query(zone, "SOA")
        message.set_opcode(dns.opcode.NOTIFY)
        message.flags |= dns.flags.AA
        if rng.random() < 0.6:
            message.answer.append(dns.rrset.from_text(zone, 0, "IN", "SOA",
                                                      f"ns1.{zone} h.{zone} {rng.randrange(2**32)} 1 2 3 4"))
        return _wire(message, rng)

    def loop(self, rng: random.Random) -> bytes:
        shape = rng.choice((b"\xc0\x0c", b"\x01a\xc0\x0c", b"\x01a\x01b\xc0\x0e", b"\xc0\x0e\xc0\x0c", b"\xc0\xff",
                            b"\x01a\xc0\x10\x00"))
        tail = struct.pack("!HH", rng.choice(QTYPES), 1)
        records = b""
        if rng.random() < 0.5:  # a record whose owner points back at the question
            records = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 0, 2) + b"\xc0\x0c"
        return header(rng.randrange(65536), 0, 1, 0, 0, 1 if records else 0) + shape + tail + records


# -- the pieces ---------------------------------------------------------------------------------
def header(ident: int, flags: int, qd: int, an: int, ns: int, ar: int) -> bytes:
    return struct.pack("!6H", ident, flags & 0xFFFF, qd, an, ns, ar)


def question_wire(qname: str, qtype: int, qclass: int) -> bytes:
    return owner_wire(qname) + struct.pack("!HH", qtype, qclass)


def owner_wire(text: str) -> bytes:
    """The uncompressed wire form of the name `text`."""
    return dns.name.from_text(text).to_digestable()


def rr(owner: bytes, rdtype: int, rdclass: int, ttl: int, rdata: bytes) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def opt_record(payload: int, ext_rcode: int, version: int, flags: int, options: list[tuple[int, bytes]]) -> bytes:
    rdata = b"".join(struct.pack("!HH", code, len(data)) + data for code, data in options)
    return b"\x00" + struct.pack("!HHBBHH", 41, payload, ext_rcode, version, flags, len(rdata)) + rdata


def name(rng: random.Random) -> str:
    """A name of the shipped hierarchy, one below it, or a random (sometimes odd) one."""
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(NAMES)
    if roll < 0.8:
        prefix = rng.choice(("www.", "_llm._tcp.", f"nx-{rng.randrange(10**6)}.", "*.", "q."))
        return prefix + rng.choice(ZONES)
    labels = []
    for _ in range(rng.randint(1, 5)):
        label = "".join(rng.choice("abz09-_*\\. ") for _ in range(rng.randint(1, 63)))
        labels.append(label.replace("\\", "\\\\").replace(".", "\\.").replace(" ", "\\032"))
    candidate = ".".join(labels) + "."
    try:
        dns.name.from_text(candidate)
    except dns.name.NameTooLong:
        return rng.choice(NAMES)
    return candidate


def text_option(rng: random.Random, text: str) -> bytes:
    """A 65001 payload: mostly valid, sometimes not."""
    roll = rng.random()
    if roll < 0.5:
        return encode_text_option(text)
    return rng.choice((
        b"",
        b"\x00",
        b"\x00" + b"\xff\xfe\xc0\x80",  # invalid UTF-8
        b"\x01" + _bytes(rng, 50),  # says zstd, is not
        b"\x01" + ZSTD_BOMB,
        bytes([rng.randrange(2, 256)]) + text.encode(),  # unknown flags
        b"\x00" + b" \t\n" * 10,
        b"\x00" + ("word " * rng.randint(100, 13_000)).encode()[:65000],  # huge
    ))


def embedding_option(rng: random.Random) -> bytes:
    """A 65002 payload: a valid unit vector, or a wrong model, dimension, scale or length."""
    vector = np.random.default_rng(rng.randrange(2**32)).standard_normal(DIMENSION).astype(np.float32)
    vector /= np.linalg.norm(vector)
    good = encode_embedding_option(vector, MODEL_TAG)
    roll = rng.random()
    if roll < 0.3:
        return good
    scale = rng.choice((float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-45, 3.4e38))
    return rng.choice((
        struct.pack("!HH", rng.randrange(65536), DIMENSION) + good[4:],  # another model
        struct.pack("!HHf", MODEL_TAG, DIMENSION, scale) + good[8:],
        struct.pack("!HHf", MODEL_TAG, 8, 0.1) + _bytes(rng, 8),  # the wrong dimension
        struct.pack("!HHf", MODEL_TAG, 65535, 0.1) + good[8:],  # says more than it holds
        struct.pack("!HHf", MODEL_TAG, 0, 1.0),
        good[: rng.randrange(len(good))],
        good + _bytes(rng, 20),
    ))


def mutate(wire: bytes, rng: random.Random) -> bytes:
    """`wire` with one to three byte-level changes."""
    data = bytearray(wire)
    for _ in range(rng.randint(1, 3)):
        roll = rng.randrange(7)
        if roll == 0 and data:
            del data[rng.randrange(len(data)):]  # truncated
        elif roll == 1 and data:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif roll == 2 and len(data) >= 12:
            at = rng.choice((4, 6, 8, 10))
            data[at : at + 2] = struct.pack("!H", rng.choice((0, 1, 2, 255, 65535, rng.randrange(65536))))
        elif roll == 3:
            at = rng.randrange(len(data) + 1)
            data[at:at] = _bytes(rng, 16)
        elif roll == 4 and len(data) > 14:
            at = rng.randrange(12, len(data) - 1)
            data[at : at + 2] = struct.pack("!H", 0xC000 | rng.choice((12, at, at + 2, rng.randrange(len(data)))))
        elif roll == 5 and len(data) >= 4:
            data[2:4] = struct.pack("!H", rng.randrange(65536))  # any flags, opcode, rcode
        elif roll == 6 and data:
            start = rng.randrange(len(data))
            data[start:start] = data[start : start + rng.randint(1, 40)]
    return bytes(data)


def raw(rng: random.Random) -> bytes:
    return _bytes(rng, rng.choice((2, 11, 12, 40, 512)))


def with_id(wire: bytes, ident: int) -> bytes:
    """`wire` with its ID set to `ident` (unchanged when shorter than an ID)."""
    return struct.pack("!H", ident) + wire[2:] if len(wire) >= 2 else wire


def _flags(rng: random.Random) -> int:
    """Header flags of a query: RD/CD/AD sometimes, now and then anything but opcode and QR."""
    if rng.random() < 0.1:
        return rng.randrange(65536) & ~0xF800
    return rng.choice((0, 0x0100, 0x0110, 0x0120, 0x0400))


def _wire(message: dns.message.Message, rng: random.Random) -> bytes:
    message.id = rng.randrange(65536)
    return message.to_wire()


def _random_rr(rng: random.Random) -> bytes:
    owner = owner_wire(name(rng))
    return rr(owner, rng.choice(QTYPES), rng.choice(QCLASSES), rng.randrange(2**32), _bytes(rng, 30))


def _bump(wire: bytes, at: int) -> bytes:
    """`wire` with the 16-bit count at offset `at` one higher."""
    (count,) = struct.unpack_from("!H", wire, at)
    return wire[:at] + struct.pack("!H", (count + 1) & 0xFFFF) + wire[at + 2 :]


def _bytes(rng: random.Random, most: int) -> bytes:
    return rng.randbytes(rng.randint(0, most))
