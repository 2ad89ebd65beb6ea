"""The contract of `nameserver/wire.py`: byte for byte what dnspython reads and renders.

One seeded generator makes thousands of queries (with and without EDNS, with semantic and other
options, any case, compression pointers, other opcodes and counts, and truncated, padded or
damaged copies of them) and replies (answer, authority and OPT records, EDE). For each:
- every reader agrees with `dns.message.from_wire` (same ID, flags, QNAME and its case, QTYPE,
  QCLASS, OPT payload/version/flags and options), or declines a shape it does not read
  (None / -1) while dnspython decides, and rejects what dnspython rejects;
- every splice and piece written equals what dnspython renders for the same message.
The fast renderer of whole replies is held to dnspython by `test_ns_render*.py`.
"""
from __future__ import annotations

import random
import struct
from typing import Iterator

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import pytest
from helpers.wirekey import reference_locate
from hypothesis import given
from hypothesis import strategies as st

from nameserver import _hotpath  # type: ignore[attr-defined]
from nameserver.edns import negotiate
from nameserver.errors import Rejected
from nameserver.request import Request
from nameserver.wire import (
    KNOWN_OPCODES,
    SCANNED_OPTIONS,
    PlainQuery,
    copyable_question,
    count_down,
    echoes_question,
    error_reply,
    id_from_wire,
    labels_to_wire,
    opt_to_wire,
    plain_qname_end,
    qname_from_wire,
    qname_wire,
    query_from_wire,
    question_end,
    splice_question,
    splice_transfer,
    ttl_offsets,
    update_lease_from_wire,
)

SEED = 14
CASES = 3000
CLIENT = ("127.0.0.1", 5353)
TYPES = ["A", "AAAA", "TXT", "SRV", "CNAME", "MX", "ANY", "AXFR", "IXFR", "SOA", "TYPE65280", "TYPE97"]
LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
OPTION_CODES = [65001, 65002, 65001, 10, 65009, 12]  # the semantic ones most often


def _label(rng: random.Random) -> bytes:
    if rng.random() < 0.05:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))  # any octets
    size = 63 if rng.random() < 0.05 else rng.randint(1, 12)
    return "".join(rng.choice(LABEL_CHARS) for _ in range(size)).encode()


def _name(rng: random.Random) -> dns.name.Name:
    labels = [_label(rng) for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 6]))]
    while sum(len(label) + 1 for label in labels) + 1 > 255:
        labels.pop()
    return dns.name.Name([*labels, b""])


def _query(rng: random.Random) -> dns.message.Message:
    query = dns.message.make_query(_name(rng), rng.choice(TYPES), rng.choice(["IN", "IN", "CH", "ANY", "CLASS7"]))
    query.id = rng.randrange(65536)
    query.flags = dns.flags.Flag(rng.choice([0, dns.flags.RD, dns.flags.RD | dns.flags.CD | dns.flags.AD]))
    if rng.random() < 0.1:
        query.set_opcode(rng.choice([dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS, dns.opcode.IQUERY]))
    if rng.random() < 0.7:
        options = [dns.edns.GenericOption(rng.choice(OPTION_CODES), rng.randbytes(rng.randint(0, 30)))
                   for _ in range(rng.choice([0, 0, 1, 2, 3]))]
        flags = dns.flags.DO if rng.random() < 0.3 else 0
        query.use_edns(rng.choice([0, 0, 0, 1]), flags, rng.choice([0, 512, 1232, 4096, 65535]), options=options)
    return query


def _damaged(rng: random.Random, wire: bytes) -> bytes:
    """`wire` cut, padded, with a byte changed, or with its QNAME compressed."""
    choice = rng.randrange(6)
    if choice == 0:
        return wire[: rng.randrange(len(wire))]
    if choice == 1:
        return wire + rng.randbytes(rng.randint(1, 4))
    if choice == 2:
        mutated = bytearray(wire)
        mutated[rng.randrange(len(wire))] = rng.randrange(256)
        return bytes(mutated)
    if choice == 3:
        mutated = bytearray(wire)
        mutated[rng.choice([2, 3, 5, 7, 9, 11])] ^= 1 << rng.randrange(8)  # flags and counts
        return bytes(mutated)
    end = question_end(wire)
    if end < 0:
        return wire
    # a pointer to offset 11 (ARCOUNT's low octet: 0 or 1) ends the QNAME; the labels before stay
    first = wire[12] + 13 if wire[12] and rng.random() < 0.5 else 12
    return wire[:first] + b"\xc0\x0b" + wire[end:]


def _fixed_shapes() -> Iterator[bytes]:
    """The hand-made cases of the earlier scan and parse tests."""
    for name in ["www.sem.test.", "WwW.SeM.TeSt.", ".", "a-b_c.x\\.y.test."]:
        for edns in [False, 0, 1, "do", 512, 65535]:
            for flags in [0, dns.flags.RD | dns.flags.CD | dns.flags.AD]:
                for rdtype in ["A", "TXT", "TYPE65280"]:
                    if edns == "do":
                        query = dns.message.make_query(name, rdtype, want_dnssec=True, payload=4096)
                    elif not isinstance(edns, bool) and edns > 1:
                        query = dns.message.make_query(name, rdtype, use_edns=0, payload=edns)
                    else:
                        query = dns.message.make_query(name, rdtype, use_edns=edns)
                    query.flags = dns.flags.Flag(flags)
                    yield query.to_wire()
    base = dns.message.make_query("www.sem.test.", "A").to_wire()
    semantic = dns.message.make_query("x.q.sem.test.", "SRV", use_edns=0,
                                      options=[dns.edns.GenericOption(65001, b"\x00abc")]).to_wire()
    opt_start = len(semantic) - 11 - 8  # the OPT record: 11 fixed octets, then 8 of RDATA

    def with_rdata(rdata: bytes) -> bytes:
        return semantic[: opt_start + 9] + struct.pack("!H", len(rdata)) + rdata

    yield with_rdata(struct.pack("!HH", 65001, 4) + b"\x00abc" + b"\xfd")  # half an option header
    yield with_rdata(struct.pack("!HH", 65001, 9) + b"\x00abc")  # OPTION-LENGTH past the RDATA
    yield semantic + b"\x00"
    yield base[:12] + b"\x03www\xc0\x0c" + base[-4:]  # a pointer loop in the QNAME
    yield base[:12] + b"\x03www\xc0\x0b" + base[-4:]  # a valid pointer (to a 0 octet of the header)
    yield base[:14]
    yield b"\x00" * 11
    for options in ([(65001, b"\x00what is a tort")], [(65002, b"\x12\x34\x00\x02\x3f\x80\x00\x00\x01\x02")],
                    [(65001, b"\x00a b"), (65002, b"")], [(65002, b"x"), (65001, b"y"), (65001, b"second")]):
        yield dns.message.make_query("h-abc.q.sem.test.", "SRV", use_edns=0, payload=1232,
                                     options=[dns.edns.GenericOption(c, d) for c, d in options]).to_wire()


def corpus() -> Iterator[tuple[bytes, bool]]:
    """(wire, made intact by dnspython) for every case."""
    for wire in _fixed_shapes():
        yield wire, False
    rng = random.Random(SEED)
    for _ in range(CASES):
        wire = _query(rng).to_wire()
        yield wire, True
        yield _damaged(rng, wire), False


def _parse(wire: bytes) -> dns.message.Message | None:
    try:
        return dns.message.from_wire(wire, keyring=False)
    except (dns.exception.DNSException, ValueError, struct.error):
        return None


def _plain_shape(message: dns.message.Message) -> bool:
    """What `PlainQuery.from_wire` must read itself (dnspython wrote it: no compression in it)."""
    return (message.opcode() == dns.opcode.QUERY and not message.flags & dns.flags.QR
            and all(o.otype in SCANNED_OPTIONS for o in message.options))


def _check_plain(wire: bytes, full: dns.message.Message | None, intact: bool) -> None:
    plain = PlainQuery.from_wire(wire)
    if intact and full is not None and _plain_shape(full):
        assert plain is not None
    if plain is None:
        return
    assert full is not None and len(full.question) == 1
    question = full.question[0]
    assert (plain.query_id, plain.flags) == (full.id, full.flags)
    assert (plain.qtype, plain.qclass) == (question.rdtype, question.rdclass)
    assert plain.qname_end == plain_qname_end(wire) == question_end(wire)
    name = qname_from_wire(wire, plain.qname_end)
    assert name == question.name and name.labels == question.name.labels  # the client's case
    assert qname_wire(wire, plain.qname_end) == question.name.to_wire()
    assert plain.edns == (full.edns >= 0)
    if plain.edns:
        assert plain.payload == full.payload and (plain.ttl >> 16) & 0xFF == full.edns
        assert plain.ttl & 0xFFFF == full.ednsflags & 0xFFFF and (plain.ttl >> 24) == full.rcode() >> 4
    negotiation = negotiate(full, "udp", 1232)
    scanned = Request.plain(wire, CLIENT, "udp", negotiation, plain.qtype, plain.qclass, plain.flags,
                            plain.qname_end, plain.options)
    parsed = Request.of(full, wire, CLIENT, "udp", negotiation)
    assert scanned.qname.labels == parsed.qname.labels and scanned.qkey == parsed.qkey
    assert scanned.qname_wire == parsed.qname_wire == question.name.to_wire()
    for code in (*SCANNED_OPTIONS, 10):
        first = next((o.to_wire() for o in full.options if o.otype == code), None)
        assert scanned.option(code) == parsed.option(code) == first
    assert _hotpath.locate(wire, b"u", 4096) is not None


def _check_query(wire: bytes, full: dns.message.Message | None) -> None:
    try:
        message = query_from_wire(wire)
    except Rejected as rejected:
        if len(wire) < 12 or wire[2] & 0x80:
            assert rejected.refusal is None  # dropped
            return
        assert rejected.refusal is not None
        flags = struct.unpack_from("!H", wire, 2)[0]
        opcode = dns.opcode.from_flags(flags)
        expected = dns.rcode.NOTIMP if opcode not in KNOWN_OPCODES else dns.rcode.FORMERR
        assert rejected.refusal.rcode == expected
        assert full is None or opcode not in KNOWN_OPCODES or len(full.question) != 1
        reference = dns.message.Message(id=id_from_wire(wire))
        reference.flags = dns.flags.Flag(dns.flags.QR | (flags & (dns.flags.RD | dns.flags.CD)))
        reference.set_opcode(opcode)
        reference.set_rcode(expected)
        assert error_reply(wire, expected) == reference.to_wire()
        return
    assert full is not None and message == full
    assert (message.id, message.flags, message.edns, message.ednsflags, message.payload, message.options) == (
        full.id, full.flags, full.edns, full.ednsflags, full.payload, full.options)
    found = copyable_question(wire)
    if found is not None:
        end, flags = found
        assert flags == full.flags and qname_from_wire(wire, end).labels == full.question[0].name.labels
    elif question_end(wire) >= 0 and wire[4:6] == b"\x00\x01":
        pytest.fail("an uncompressed question the renderer could copy was declined")


def test_readers_agree_with_dnspython() -> None:
    read = plain = rejected = 0
    for wire, intact in corpus():
        full = _parse(wire)
        _check_plain(wire, full, intact)
        _check_query(wire, full)
        read += full is not None
        plain += PlainQuery.from_wire(wire) is not None
        rejected += full is None
    assert plain > 1000 and read - plain > 500 and rejected > 300  # every branch was exercised


def test_cache_key_differs_only_by_id_and_case() -> None:
    rng = random.Random(SEED)
    for _ in range(500):
        query = _query(rng)
        wire = query.to_wire()
        found = _hotpath.locate(wire, b"u", 4096)
        assert found == reference_locate(wire, b"u", 4096)
        if found is None:
            assert plain_qname_end(wire) < 0
            continue
        query.id ^= 0x5A5A
        query.question[0].name = dns.name.Name([label.swapcase() for label in query.question[0].name.labels])
        other = query.to_wire()
        assert _hotpath.locate(other, b"u", 4096) == found and _hotpath.locate(other, b"t", 4096)[0] != found[0]


def test_cache_key_in_c_is_the_reference_on_every_corpus_message() -> None:
    for wire, _intact in corpus():
        for tag, max_udp in ((b"u", 4096), (b"u", 1232), (b"t", 4096)):
            assert _hotpath.locate(wire, tag, max_udp) == reference_locate(wire, tag, max_udp)


@given(st.binary(max_size=80), st.integers(0, 0xFFFF), st.booleans())
def test_cache_key_in_c_is_the_reference_on_any_octets(tail: bytes, payload: int, edns: bool) -> None:
    header = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00" + (b"\x01" if edns else b"\x00")
    opt = b"\x00\x00\x29" + payload.to_bytes(2, "big") + tail[:6]
    for wire in (header + tail, header + b"\x03wWw\x00\x00\x01\x00\x01" + opt + tail[6:]):
        assert _hotpath.locate(wire, b"u", 1232) == reference_locate(wire, b"u", 1232)


def _reply(rng: random.Random, query: dns.message.Message) -> dns.message.Message:
    reply = dns.message.make_response(query)
    qname = query.question[0].name
    under = dns.name.Name([b"sub", *qname.labels]) if len(qname) < 250 else qname
    candidates = [
        dns.rrset.from_text(qname, rng.randrange(1 << 31), "IN", "A", "192.0.2.1", "192.0.2.2"),
        dns.rrset.from_text(qname, rng.randrange(100000), "IN", "CNAME", under.to_text()),
        dns.rrset.from_text(under, rng.randrange(100000), "IN", "TXT", '"a" "b"'),
        dns.rrset.from_text(qname, rng.randrange(100000), "IN", "MX", f"10 {under}"),
        dns.rrset.from_text(under, rng.randrange(100000), "IN", "SRV", f"0 5 80 {qname}"),
    ]
    reply.answer.extend(rng.sample(candidates, rng.randint(0, len(candidates))))
    if rng.random() < 0.5:
        reply.authority.append(dns.rrset.from_text(
            dns.name.root, rng.randrange(100000), "IN", "SOA", f"ns.{under} host.{under} 1 2 3 4 5"))
    if rng.random() < 0.6:
        reply.use_edns(0, dns.flags.DO if rng.random() < 0.5 else 0, rng.choice([512, 1232]),
                       options=[dns.edns.EDEOption(rng.choice([0, 18, 20, 24]), rng.choice([None, "why"]))])
    return reply


def test_reply_splices_equal_dnspython() -> None:
    rng = random.Random(SEED)
    spliced = 0
    for _ in range(800):
        query = _query(rng)
        query.set_opcode(dns.opcode.QUERY)
        query.flags &= ~dns.flags.QR
        wire = query.to_wire()
        if _parse(wire) is None:
            continue  # options dnspython writes but does not read back (a damaged cookie)
        reply = _reply(rng, query)
        answer = reply.to_wire(want_shuffle=False)
        # TTLs found and counted down exactly where dnspython reads them
        offsets = ttl_offsets(answer)
        assert offsets is not None
        seconds = rng.choice([0, 1, 5, 100000])
        lowered, read = dns.message.from_wire(count_down(answer, offsets, seconds)), dns.message.from_wire(answer)
        for section, original in zip(lowered.sections, read.sections):
            assert [(r.name, r.rdtype, r.ttl) for r in section] == [
                (r.name, r.rdtype, max(r.ttl - seconds, 0)) for r in original]
        assert lowered.options == read.options and lowered.ednsflags == read.ednsflags
        assert ttl_offsets(answer[: rng.randrange(12, len(answer))]) is None and ttl_offsets(answer + b"\x00") is None
        # the same answer to the same question with another ID and QNAME case
        end = plain_qname_end(wire)
        if end < 0:
            continue
        other = dns.message.from_wire(wire)
        other.id = rng.randrange(65536)
        other.question[0].name = dns.name.Name([label.swapcase() for label in other.question[0].name.labels])
        other_wire = other.to_wire()
        twin = dns.message.make_response(other)
        for mine, theirs in zip(twin.sections[1:], reply.sections[1:]):
            mine.extend(theirs)
        if reply.edns >= 0:
            twin.use_edns(0, reply.ednsflags, reply.payload, options=reply.options, pad=reply.pad)
        assert echoes_question(answer, other_wire, end)
        assert splice_question(answer, other_wire, end) == twin.to_wire(want_shuffle=False)
        spliced += 1
    assert spliced > 200


def test_transfer_splice_equals_dnspython() -> None:
    rng = random.Random(SEED)
    origin = dns.name.from_text("sem.test.")
    rrsets = [dns.rrset.from_text(origin, 3600, "IN", "SOA", "ns.sem.test. host.sem.test. 1 2 3 4 5")]
    rrsets += [dns.rrset.from_text(f"h{i}.sem.test.", 60, "IN", "TXT", f'"{"x" * 200}"') for i in range(200)]
    rrsets.append(rrsets[0])

    def stream(query_id: int, flags: int, qname: dns.name.Name) -> tuple[bytes, ...]:
        out, renderer, count = [], dns.renderer.Renderer(query_id, flags, 16384), 0
        renderer.add_question(qname, dns.rdatatype.AXFR, dns.rdataclass.IN)
        for rrset in rrsets:
            try:
                renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
                count += 1
                continue
            except dns.exception.TooBig:
                assert count
            renderer.write_header()
            out.append(renderer.get_wire())
            renderer = dns.renderer.Renderer(query_id, flags, 16384)
            renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        renderer.write_header()
        out.append(renderer.get_wire())
        return tuple(out)

    rendered = stream(0, dns.flags.QR | dns.flags.AA, origin)
    assert len(rendered) > 1
    for _ in range(50):
        qname = dns.name.Name([label.swapcase() if rng.random() < 0.5 else label for label in origin.labels])
        query = dns.message.make_query(qname, "AXFR", use_edns=rng.choice([False, 0]))
        query.id = rng.randrange(65536)
        query.flags = dns.flags.Flag(rng.choice([0, dns.flags.RD, dns.flags.RD | dns.flags.CD]))
        expected = stream(query.id, dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD), qname)
        assert splice_transfer(rendered, query.to_wire(), query.flags) == expected


def test_pieces_written_equal_dnspython() -> None:
    rng = random.Random(SEED)
    for _ in range(300):
        options = [rng.choice([dns.edns.EDEOption(rng.randrange(30), rng.choice([None, "text"])),
                               dns.edns.GenericOption(rng.randrange(65536), rng.randbytes(rng.randint(0, 9)))])
                   for _ in range(rng.randint(0, 3))]
        payload, do = rng.randrange(65536), rng.random() < 0.5
        message = dns.message.Message(id=0)
        message.use_edns(0, dns.flags.DO if do else 0, payload, options=options)
        assert opt_to_wire(options, payload, do) == message.to_wire()[12:]
        labels = ["".join(rng.choice(LABEL_CHARS) for _ in range(rng.randint(1, 20))) for _ in range(rng.randint(0, 5))]
        assert labels_to_wire(labels) == dns.name.Name([*(x.encode() for x in labels), b""]).to_wire()[:-1]
        data = rng.randbytes(rng.choice([0, 3, 4, 8, 9]))
        assert update_lease_from_wire(data) == (int.from_bytes(data[:4], "big") if len(data) in (4, 8) else None)
