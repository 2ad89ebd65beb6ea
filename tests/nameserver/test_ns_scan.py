"""`scan_plain` reads exactly what `dns.message.from_wire` reads, and leaves every other shape to it."""
from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import pytest

from nameserver.edns import negotiate
from nameserver.errors import scan_plain
from nameserver.request import Request


@pytest.mark.parametrize("name", ["www.sem.test.", "WwW.SeM.TeSt.", ".", "a-b_c.x\\.y.test."])
@pytest.mark.parametrize("edns", [False, 0, 1, "do", 512, 65535])
@pytest.mark.parametrize("flags", [0, dns.flags.RD | dns.flags.CD | dns.flags.AD])
@pytest.mark.parametrize("rdtype", ["A", "TXT", "TYPE65280"])
def test_scan_equals_full_parse(name: str, edns, flags: int, rdtype: str) -> None:
    if edns == "do":
        query = dns.message.make_query(name, rdtype, want_dnssec=True, payload=4096)
    elif isinstance(edns, int) and edns > 1:
        query = dns.message.make_query(name, rdtype, use_edns=0, payload=edns)
    else:
        query = dns.message.make_query(name, rdtype, use_edns=edns)
    query.flags = dns.flags.Flag(flags)
    wire = query.to_wire()
    plain, full = scan_plain(wire), dns.message.from_wire(wire)
    assert plain is not None
    question = full.question[0]
    assert (plain.query_id, plain.flags, plain.qtype, plain.qclass) == (full.id, full.flags, question.rdtype, question.rdclass)
    request = Request.plain(wire, ("127.0.0.1", 1), "udp", negotiate(full, "udp", 1232), plain.qtype, plain.qclass,
                            plain.flags, plain.qname_end)
    assert request.qname == question.name and request.qname.labels == question.name.labels  # the client's case
    assert request.qkey == question.name.to_wire().lower()
    assert plain.edns == (full.edns >= 0)
    if plain.edns:
        assert plain.payload == full.payload and (plain.ttl >> 16) & 0xFF == full.edns
        assert plain.ttl & 0xFFFF == full.ednsflags & 0xFFFF
    assert wire[plain.qname_end - 1] == 0 and plain.qname_end + 4 <= len(wire)


def _shapes() -> list[bytes]:
    base = dns.message.make_query("www.sem.test.", "A").to_wire()
    opt = dns.message.make_query("www.sem.test.", "A", use_edns=0, options=[dns.edns.GenericOption(65009, b"x")]).to_wire()
    semantic = dns.message.make_query("x.q.sem.test.", "SRV", use_edns=0,
                                      options=[dns.edns.GenericOption(65001, b"\x00abc")]).to_wire()
    opt_start = len(semantic) - 11 - 8  # the OPT record: 11 fixed octets, then 8 of RDATA
    assert semantic[opt_start + 1 : opt_start + 3] == b"\x00\x29"

    def with_rdata(rdata: bytes) -> bytes:
        return semantic[: opt_start + 9] + struct.pack("!H", len(rdata)) + rdata

    cut_option = with_rdata(struct.pack("!HH", 65001, 4) + b"\x00abc" + b"\xfd")  # half an option header
    long_option = with_rdata(struct.pack("!HH", 65001, 9) + b"\x00abc")  # OPTION-LENGTH past the RDATA
    compressed = base[:12] + b"\x03www\xc0\x0c" + base[-4:]  # a pointer in the QNAME
    two = bytearray(base)
    two[5] = 2
    update = bytearray(base)
    update[2] |= 0x28
    response = bytearray(base)
    response[2] |= 0x80
    answer_count = bytearray(base)
    answer_count[7] = 1
    return [base + b"junk", base[:-1], opt, cut_option, long_option, semantic + b"\x00", compressed, bytes(two), bytes(update), bytes(response),
            bytes(answer_count), base[:14], b"\x00" * 11]


@pytest.mark.parametrize("wire", _shapes())
def test_other_shapes_are_left_to_the_full_parse(wire: bytes) -> None:
    assert scan_plain(wire) is None


@pytest.mark.parametrize("options", [
    [(65001, b"\x00what is a tort")],
    [(65002, b"\x12\x34\x00\x02\x3f\x80\x00\x00\x01\x02")],
    [(65001, b"\x00a b"), (65002, b"")],
    [(65002, b"x"), (65001, b"y"), (65001, b"second")],
])
def test_semantic_options_are_scanned_as_dnspython_reads_them(options: list[tuple[int, bytes]]) -> None:
    query = dns.message.make_query("h-abc.q.sem.test.", "SRV", use_edns=0, payload=1232,
                                   options=[dns.edns.GenericOption(code, data) for code, data in options])
    wire = query.to_wire()
    plain, full = scan_plain(wire), dns.message.from_wire(wire)
    assert plain is not None and plain.edns and plain.payload == 1232
    scanned = Request.plain(wire, ("127.0.0.1", 1), "udp", negotiate(full, "udp", 1232), plain.qtype, plain.qclass,
                            plain.flags, plain.qname_end, plain.options)
    parsed = Request.of(full, wire, ("127.0.0.1", 1), "udp", negotiate(full, "udp", 1232))
    for code in (65001, 65002, 65003):
        first = next((o.to_wire() for o in full.options if o.otype == code), None)
        assert scanned.option(code) == parsed.option(code) == first
