"""The SDK's own DNS messages (`sdk.message`) held to dnspython: the queries it writes are the bytes
`dns.message.make_query` writes, and what it reads from a reply is what `dns.message.from_wire`
reads, on the shapes a resolution meets and on generated messages that reach every branch (name
escapes, compression, classes, EDNS options, the extended RCODE); any bytes are either read or
refused with `MalformedReply`, and dnslib, an independent decoder, agrees on a route's reply."""
from __future__ import annotations

import struct
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dnslib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.edns_text import TEXT_OPTION
from sdk.message import MalformedReply, Query, Reply, Soa, Srv, Txt, labels_of, read_reply
from sdk.route import explain_query, question_form, question_query

SINGLETONS = (dns.rdatatype.CNAME, dns.rdatatype.SOA, dns.rdatatype.DNAME)
ROUTE_REPLY = """id 4242
opcode QUERY
rcode NOERROR
flags QR AA RD
edns 0
payload 1232
;QUESTION
verbal-contract-bindingqm.q.semantic.root. IN SRV
;ANSWER
verbal-contract-bindingqm.q.semantic.root. 300 IN CNAME verbal-contract-bindingqm.q.legal.semantic.root.
verbal-contract-bindingqm.q.legal.semantic.root. 300 IN CNAME verbal-contract-bindingqm.q.contract.legal.semantic.root.
verbal-contract-bindingqm.q.contract.legal.semantic.root. 300 IN CNAME _llm._tcp.contract.legal.semantic.root.
_llm._tcp.contract.legal.semantic.root. 300 IN SRV 10 10 8111 llm1.contract.legal.semantic.root.
_llm._tcp.contract.legal.semantic.root. 300 IN SRV 20 0 8112 llm2.contract.legal.semantic.root.
;ADDITIONAL
llm1.contract.legal.semantic.root. 300 IN A 127.0.0.1
llm2.contract.legal.semantic.root. 300 IN AAAA ::1
"""
EXPLAIN_REPLY = """id 7
opcode QUERY
rcode NOERROR
flags QR AA
;QUESTION
verbal-contract-bindingqm.explain.semantic.root. IN TXT
;ANSWER
verbal-contract-bindingqm.explain.semantic.root. 300 IN TXT "hop=1" "stage=fast" "confidence=0.9448"
verbal-contract-bindingqm.explain.semantic.root. 300 IN TXT "hop=2" "stage=head" "" "note=\\"quoted\\" \\\\ x"
"""
NEGATIVE_REPLY = """id 9
opcode QUERY
rcode NXDOMAIN
flags QR AA RD
;QUESTION
nothing.semantic.root. IN PTR
;AUTHORITY
semantic.root. 3600 IN SOA ns1.semantic.root. hostmaster.semantic.root. 2026120301 7200 900 1209600 300
"""


def dnspython_view(message: dns.message.Message) -> dict[str, Any]:
    """What a reader must give, from dnspython's message, RRsets keyed by (owner, type, class)."""
    def data(rd: dns.rdata.Rdata) -> Any:
        if rd.rdtype in (dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.NS, dns.rdatatype.DNAME):
            return rd.target.to_text()
        if rd.rdclass == dns.rdataclass.IN and rd.rdtype == dns.rdatatype.SRV:
            return Srv(rd.priority, rd.weight, rd.port, rd.target.to_text())
        if rd.rdtype == dns.rdatatype.TXT:
            return Txt(tuple(rd.strings))
        if rd.rdclass == dns.rdataclass.IN and rd.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return rd.address
        if rd.rdtype == dns.rdatatype.SOA:
            return Soa(rd.mname.to_text(), rd.rname.to_text(), rd.serial, rd.refresh, rd.retry, rd.expire,
                       rd.minimum)
        return rd.to_wire()

    def section(rrsets: list[dns.rrset.RRset]) -> dict[tuple[str, int, int], tuple[int, frozenset[Any]]]:
        return {(rr.name.to_text().lower(), rr.rdtype, rr.rdclass): (rr.ttl, frozenset(data(rd) for rd in rr))
                for rr in rrsets}

    return {
        "id": message.id, "flags": message.flags, "rcode": int(message.rcode()),
        "question": [(q.name.to_text(), q.rdtype, q.rdclass) for q in message.question],
        "answer": section(message.answer), "authority": section(message.authority),
        "additional": section(message.additional),
        "options": [(int(o.otype), o.to_wire()) for o in message.options],
    }


def our_view(reply: Reply) -> dict[str, Any]:
    """The same view of `read_reply`'s records, grouped as dnspython groups them (least TTL; of a
    type that may have one record at a name, CNAME, SOA and DNAME, the last one)."""
    def section(records: tuple[Any, ...]) -> dict[tuple[str, int, int], tuple[int, frozenset[Any]]]:
        grouped: dict[tuple[str, int, int], tuple[int, set[Any]]] = {}
        for r in records:
            ttl, items = grouped.setdefault((r.name.lower(), r.rdtype, r.rdclass), (r.ttl, set()))
            if r.rdtype in SINGLETONS:
                items = set()
            grouped[(r.name.lower(), r.rdtype, r.rdclass)] = (min(ttl, r.ttl), items | {r.data})
        return {key: (ttl, frozenset(items)) for key, (ttl, items) in grouped.items()}

    return {
        "id": reply.id, "flags": reply.flags, "rcode": reply.rcode, "question": list(reply.question),
        "answer": section(reply.answer), "authority": section(reply.authority),
        "additional": section(reply.additional), "options": list(reply.options),
    }


def agree(wire: bytes) -> None:
    assert our_view(read_reply(wire)) == dnspython_view(dns.message.from_wire(wire))


@pytest.mark.parametrize("text", [ROUTE_REPLY, EXPLAIN_REPLY, NEGATIVE_REPLY])
def test_the_replies_of_a_resolution_read_as_dnspython_reads_them(text: str) -> None:
    agree(dns.message.from_text(text).to_wire())  # compressed, as servers send them


def test_a_route_reply_reads_the_same_to_dnslib() -> None:
    wire = dns.message.from_text(ROUTE_REPLY).to_wire()
    ours, theirs = read_reply(wire), dnslib.DNSRecord.parse(wire)
    assert [(r.name, r.rdtype, r.ttl) for r in ours.answer] == [(str(r.rname), r.rtype, r.ttl) for r in theirs.rr]
    assert [str(r.data) for r in ours.answer[:3]] == [str(r.rdata.label) for r in theirs.rr[:3]]
    assert [r.data for r in ours.answer[3:]] == [
        Srv(r.rdata.priority, r.rdata.weight, r.rdata.port, str(r.rdata.target)) for r in theirs.rr[3:]]
    assert [str(r.data) for r in ours.additional] == [str(r.rdata) for r in theirs.ar if r.rtype != 41]


def test_edns_options_and_the_extended_rcode() -> None:
    reply = dns.message.make_response(dns.message.make_query("a.semantic.root.", "SRV", use_edns=0))
    reply.use_edns(0, 0, 1232, options=[dns.edns.EDEOption(dns.edns.EDECode.NO_REACHABLE_AUTHORITY, "legal down"),
                                         dns.edns.GenericOption(TEXT_OPTION, b"question text")])
    reply.set_rcode(dns.rcode.BADVERS)  # 16: its upper bits travel in the OPT record's TTL
    wire = reply.to_wire()
    agree(wire)
    ours = read_reply(wire)
    assert ours.rcode == dns.rcode.BADVERS and ours.options[0][0] == dns.edns.OptionType.EDE


@pytest.mark.parametrize("text", ["is a verbal contract binding?", " ".join(["a deposit question"] * 40)])
def test_queries_are_the_bytes_dnspython_writes(text: str) -> None:
    form = question_form(text)
    for query in (question_query(text), explain_query(form)):
        options = [dns.edns.GenericOption(code, data) for code, data in query.options]
        theirs = dns.message.make_query(query.name, query.rdtype, use_edns=0, payload=1232, options=options)
        theirs.id = query.id
        assert query.to_wire() == theirs.to_wire()
        assert query.to_message().to_wire() == theirs.to_wire()
    quiet = Query("A.Example.", dns.rdatatype.A, id=3, rd=False)
    theirs = dns.message.make_query("A.Example.", "A", use_edns=0, payload=1232)
    theirs.id, theirs.flags = 3, 0
    assert quiet.to_wire() == theirs.to_wire()


@pytest.mark.parametrize("name", ["a\\.b.example.", "\\000\\255x.example.", "bücher.example.", "relative.name", "."])
def test_names_dnspython_must_read_are_written_as_it_writes_them(name: str) -> None:
    theirs = dns.message.make_query(name, "TXT", use_edns=0, payload=1232)
    assert Query(name, dns.rdatatype.TXT, id=theirs.id).to_wire() == theirs.to_wire()


def test_a_name_over_255_octets_is_refused_as_dnspython_refuses_it() -> None:
    with pytest.raises(dns.name.NameTooLong):
        Query(".".join(["a" * 63] * 4) + ".", dns.rdatatype.A).to_wire()


def test_is_response_checks_qr_id_and_question() -> None:
    query = Query("X.semantic.root.", dns.rdatatype.SRV, id=77)
    reply = dns.message.make_response(query.to_message())
    assert query.is_response(read_reply(reply.to_wire()))
    assert Query("x.SEMANTIC.root.", dns.rdatatype.SRV, id=77).is_response(read_reply(reply.to_wire()))
    for other in (Query("y.semantic.root.", dns.rdatatype.SRV, id=77), Query("x.semantic.root.", dns.rdatatype.TXT,
                                                                             id=77),
                  Query("x.semantic.root.", dns.rdatatype.SRV, id=78)):
        assert not other.is_response(read_reply(reply.to_wire()))
    assert not query.is_response(read_reply(query.to_wire()))  # the query itself: no QR


def test_labels_of_reads_escapes() -> None:
    assert labels_of("_LLM._tcp.Legal.") == ["_llm", "_tcp", "legal"]
    assert labels_of("a\\.b.q.zone.") == ["a.b", "q", "zone"]
    assert labels_of(".") == []


# -- generated messages ------------------------------------------------------------------------
LABEL = st.one_of(st.sampled_from(["q", "explain", "_llm", "_tcp", "legal", "Semantic", "root"]),
                  st.binary(min_size=1, max_size=12))
NAME = st.lists(LABEL, min_size=0, max_size=5).map(
    lambda labels: dns.name.Name([x.encode() if isinstance(x, str) else x for x in labels] + [b""]))


@st.composite
def records(draw: st.DrawFn) -> dns.rrset.RRset:
    owner = draw(NAME)
    kind = draw(st.sampled_from(["CNAME", "PTR", "NS", "SRV", "TXT", "A", "AAAA", "SOA", "HINFO", "ANY-SRV"]))
    ttl = draw(st.integers(0, 2**31 - 1))
    target = draw(NAME)
    if kind in ("CNAME", "PTR", "NS"):
        rd = dns.rdata.from_text("IN", kind, target.to_text())
    elif kind == "SRV":
        rd = dns.rdata.from_text("IN", "SRV", f"{draw(st.integers(0, 65535))} {draw(st.integers(0, 65535))} "
                                              f"{draw(st.integers(0, 65535))} {target.to_text()}")
    elif kind == "TXT":
        strings = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
        rd = dns.rdata.from_text("IN", "TXT", " ".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in strings))
    elif kind == "A":
        rd = dns.rdata.from_text("IN", "A", ".".join(str(b) for b in draw(st.binary(min_size=4, max_size=4))))
    elif kind == "AAAA":
        import ipaddress
        rd = dns.rdata.from_text("IN", "AAAA", str(ipaddress.IPv6Address(draw(st.binary(min_size=16, max_size=16)))))
    elif kind == "SOA":
        rd = dns.rdata.from_text("IN", "SOA", f"{target.to_text()} {draw(NAME).to_text()} 1 2 3 4 {ttl % 86400}")
    elif kind == "HINFO":
        rd = dns.rdata.from_text("IN", "HINFO", '"cpu" "os"')
    else:  # a class-IN-only type in another class: opaque bytes to both readers
        rd = dns.rdata.from_wire("ANY", "SRV", b"\x00\x01\x00\x02\x00\x03\x00", 0, 7)
    return dns.rrset.from_rdata(owner, ttl, rd)


@st.composite
def replies(draw: st.DrawFn) -> bytes:
    query = dns.message.make_query(draw(NAME), draw(st.sampled_from(["SRV", "TXT", "A", "PTR"])))
    reply = dns.message.make_response(query)
    reply.id = draw(st.integers(0, 0xFFFF))
    for section in (reply.answer, reply.authority, reply.additional):
        section.extend(draw(st.lists(records(), max_size=4)))
    if draw(st.booleans()):
        reply.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(code, data) for code, data in
                                             draw(st.lists(st.tuples(st.integers(65000, 65535), st.binary(max_size=30)),
                                                           max_size=3))])
    reply.set_rcode(dns.rcode.Rcode.make(draw(st.sampled_from([0, 2, 3, 5, 16]))) if reply.edns >= 0 else 0)
    try:
        return reply.to_wire(max_size=65535)
    except dns.exception.TooBig:
        return dns.message.make_response(query).to_wire()


@settings(max_examples=150, deadline=None)
@given(replies())
def test_generated_replies_read_as_dnspython_reads_them(wire: bytes) -> None:
    agree(wire)


@settings(max_examples=200, deadline=None)
@given(replies(), st.data())
def test_damaged_replies_are_read_or_refused_never_misread(wire: bytes, data: st.DataObject) -> None:
    """Any octet changed or the message cut: `read_reply` refuses with `MalformedReply` or reads it,
    and where dnspython reads it too, both read the same."""
    index = data.draw(st.integers(0, len(wire) - 1))
    damaged = data.draw(st.one_of(st.just(wire[:index]),
                                  st.integers(0, 255).map(lambda b: wire[:index] + bytes([b]) + wire[index + 1:])))
    try:
        ours = read_reply(damaged)
    except MalformedReply:
        return
    try:
        theirs = dns.message.from_wire(damaged)
    except (dns.exception.DNSException, ValueError, struct.error):
        return  # dnspython refuses some rdata it checks more strictly (e.g. SOA, HINFO lengths)
    assert our_view(ours) == dnspython_view(theirs)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_read_or_refused(wire: bytes) -> None:
    try:
        read_reply(wire)
    except MalformedReply:
        pass


def test_pointer_loops_and_forward_pointers_are_refused() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0)
    for qname in (b"\xc0\x0c", b"\x01a\xc0\x0c", b"\xc0\x20"):  # to itself, a loop, forward
        with pytest.raises(MalformedReply):
            read_reply(header + qname + b"\x00\x01\x00\x01")
