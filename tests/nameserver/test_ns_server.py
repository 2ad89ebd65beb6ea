"""The server as clients see it: a real `semdns serve` on loopback, asked by dig, nslookup,
dnspython and raw sockets, every reply also decoded by dnslib (an independent parser)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dnslib
import pytest
from helpers.dnswire import dig, run_tool, tcp_connect, tcp_exchange, tcp_read, tcp_send, udp_exchange, udp_silent
from helpers.server import ServerHandle, running_server
from helpers.testzones import write_test_zones


@pytest.fixture(scope="module")
def zones_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_zones(tmp_path_factory.mktemp("zones"))


@pytest.fixture(scope="module")
def server(zones_dir: Path) -> Iterator[ServerHandle]:
    with running_server(zones_dir, ["--axfr-allow", "127.0.0.1/32", "--listen", "[::1]:0"]) as handle:
        yield handle


def ask(
    server: ServerHandle, name: str, rdtype: str = "A", tcp: bool = False, **edns
) -> tuple[dns.message.Message, dnslib.DNSRecord]:
    query = dns.message.make_query(name, rdtype, **edns)
    wire = query.to_wire()
    reply = (tcp_exchange if tcp else udp_exchange)(server.host, server.port, wire)
    parsed = dns.message.from_wire(reply)
    assert parsed.id == query.id
    return parsed, dnslib.DNSRecord.parse(reply)


def rtypes(rrs) -> list[str]:
    return [dnslib.QTYPE[rr.rtype] for rr in rrs if rr.rtype != 41]


def test_soa_with_dig(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "SOA", "sem.test", "+norec")
    assert "status: NOERROR" in out and "flags: qr aa;" in out
    assert "hostmaster.sem.test. 2026112301 3600 900 1209600 300" in out


def test_answer_decoded_by_both_parsers(server: ServerHandle) -> None:
    msg, rec = ask(server, "www.sem.test", "A")
    assert msg.flags & dns.flags.AA and msg.rcode() == dns.rcode.NOERROR
    assert rec.header.aa == 1 and rec.header.rcode == 0 and rtypes(rec.rr) == ["A"]
    assert str(rec.rr[0].rdata) == "192.0.2.1"


def test_cname_chain(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "A", "alias.sem.test", "+noall", "+answer")
    assert "alias2.sem.test." in out and "192.0.2.1" in out
    _msg, rec = ask(server, "alias.sem.test", "A")
    assert rtypes(rec.rr) == ["CNAME", "CNAME", "A"] and rec.header.aa == 1


def test_wildcard(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "TXT", "Some-Thing.wild.sem.test", "+noall", "+answer")
    assert 'Some-Thing.wild.sem.test. 3600 IN TXT "wildcard"' in " ".join(out.split()).replace("\t", " ")
    _msg, rec = ask(server, "x.wild.sem.test", "A")
    assert str(rec.rr[0].rname) == "x.wild.sem.test." and str(rec.rr[0].rdata) == "192.0.2.9"


def test_referral_has_glue_and_no_aa(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "A", "host.sub.sem.test", "+norec")
    assert "status: NOERROR" in out and "flags: qr;" in out and "ANSWER: 0" in out
    msg, rec = ask(server, "host.sub.sem.test", "A")
    assert not msg.flags & dns.flags.AA and rec.header.aa == 0
    assert rtypes(rec.auth) == ["NS"] and str(rec.auth[0].rdata) == "ns1.sub.sem.test."
    glue = [rr for rr in rec.ar if rr.rtype == dnslib.QTYPE.A]
    assert [(str(g.rname), str(g.rdata)) for g in glue] == [("ns1.sub.sem.test.", "127.0.0.2")]


def test_nxdomain_with_soa_and_negative_ttl(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "A", "nope.sem.test")
    assert "status: NXDOMAIN" in out
    _msg, rec = ask(server, "nope.sem.test", "A")
    assert rec.header.rcode == 3 and rec.header.aa == 1 and not rec.rr
    assert rtypes(rec.auth) == ["SOA"] and rec.auth[0].ttl == 300


def test_nodata_and_empty_non_terminal(server: ServerHandle) -> None:
    for name, rdtype in (("www.sem.test", "MX"), ("ent.path.sem.test", "A")):
        _msg, rec = ask(server, name, rdtype)
        assert rec.header.rcode == 0 and rec.header.aa == 1 and not rec.rr
        assert rtypes(rec.auth) == ["SOA"] and rec.auth[0].ttl == 300


def test_refused_outside_our_zones(server: ServerHandle) -> None:
    assert "status: REFUSED" in dig(server.host, server.port, "A", "example.com")
    _msg, rec = ask(server, "example.com", "A")
    assert rec.header.rcode == 5


def test_srv_with_nslookup(server: ServerHandle) -> None:
    out = run_tool("nslookup", f"-port={server.port}", "-type=SRV", "_llm._tcp.sem.test", server.host)
    assert "service = 10 10 8110 llm1.sem.test." in out


def test_srv_targets_in_additional(server: ServerHandle) -> None:
    _msg, rec = ask(server, "_llm._tcp.sem.test", "SRV")
    assert [(str(rr.rname), str(rr.rdata)) for rr in rec.ar if rr.rtype == 1] == [("llm1.sem.test.", "127.0.0.1")]


def test_ipv6_listener(server: ServerHandle) -> None:
    host, port = server.addresses[1]
    assert host == "::1"
    assert "192.0.2.1" in dig(host, port, "A", "www.sem.test", "+short")


def test_truncated_over_udp_whole_over_tcp(server: ServerHandle) -> None:
    for edns in ({"use_edns": 0, "payload": 1232}, {"use_edns": False}):
        msg, rec = ask(server, "big.sem.test", "TXT", **edns)
        assert msg.flags & dns.flags.TC and rec.header.tc == 1
        assert rec.q.qname == "big.sem.test." and not rec.rr and not rec.auth
    msg, rec = ask(server, "big.sem.test", "TXT", tcp=True)
    assert not msg.flags & dns.flags.TC and len(rec.rr) == 12
    out = dig(server.host, server.port, "TXT", "big.sem.test")
    assert "Truncated, retrying in TCP mode" in out and "ANSWER: 12" in out


def test_tcp_pipelining(server: ServerHandle) -> None:
    names = ("www.sem.test", "nope.sem.test", "alias.sem.test", "x.child.sem.test")
    queries = [dns.message.make_query(n, "A") for n in names]
    with tcp_connect(server.host, server.port) as sock:
        tcp_send(sock, *(q.to_wire() for q in queries))
        replies = {m.id: m for m in (dns.message.from_wire(tcp_read(sock)) for _ in queries)}
    assert set(replies) == {q.id for q in queries}
    for query in queries:
        reply = replies[query.id]
        assert reply.question[0].name == query.question[0].name
    assert replies[queries[1].id].rcode() == dns.rcode.NXDOMAIN
    assert replies[queries[3].id].answer[0][0].to_text() == "192.0.2.77"


def test_formerr_for_unparsable_with_header(server: ServerHandle) -> None:
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    for wire in (header + b"\x05ab", header + b"\xff\xff\xff\xff"):
        reply = udp_exchange(server.host, server.port, wire)
        rec = dnslib.DNSRecord.parse(reply)
        assert rec.header.id == 0xBEEF and rec.header.rcode == dns.rcode.FORMERR and rec.header.qr == 1


def test_formerr_for_qdcount_zero_and_two(server: ServerHandle) -> None:
    one = dns.message.make_query("www.sem.test", "A").to_wire()
    zero = one[:4] + b"\x00\x00" + one[6:12]
    two = one[:4] + b"\x00\x02" + one[6:] + one[12:]
    for wire in (zero, two):
        rec = dnslib.DNSRecord.parse(udp_exchange(server.host, server.port, wire))
        assert rec.header.rcode == dns.rcode.FORMERR and rec.header.id == struct.unpack("!H", wire[:2])[0]


def test_short_garbage_is_dropped_and_service_goes_on(server: ServerHandle) -> None:
    assert udp_silent(server.host, server.port, b"\x01\x02\x03")
    _msg, rec = ask(server, "www.sem.test", "A")
    assert rec.header.rcode == 0


def test_notimp_for_unknown_opcode(server: ServerHandle) -> None:
    query = dns.message.make_query("www.sem.test", "A")
    query.set_opcode(dns.opcode.STATUS)
    rec = dnslib.DNSRecord.parse(udp_exchange(server.host, server.port, query.to_wire()))
    assert rec.header.rcode == dns.rcode.NOTIMP and rec.header.id == query.id and rec.header.opcode == 2


def test_badvers_for_edns_version_1(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "SOA", "sem.test", "+edns=1", "+noednsnegotiation")
    assert "status: BADVERS" in out and "EDNS: version: 0" in out
    msg, rec = ask(server, "sem.test", "SOA", use_edns=1)
    assert msg.rcode() == dns.rcode.BADVERS and msg.edns == 0 and not msg.answer
    opt = [rr for rr in rec.ar if rr.rtype == 41][0]
    assert opt.edns_ver == 0 and opt.edns_rcode == 1


def test_do_bit_copied(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "SOA", "sem.test", "+dnssec")
    assert "; EDNS: version: 0, flags: do; udp: 1232" in out
    msg, rec = ask(server, "sem.test", "SOA", want_dnssec=True)
    assert msg.ednsflags & dns.flags.DO
    msg, _rec = ask(server, "sem.test", "SOA", use_edns=0)
    assert not msg.ednsflags & dns.flags.DO and msg.payload == 1232


def test_unknown_edns_option_ignored(server: ServerHandle) -> None:
    option = dns.edns.GenericOption(65123, b"whatever")
    msg, rec = ask(server, "www.sem.test", "A", use_edns=0, options=[option])
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer and not msg.options


def test_client_payload_is_clamped(server: ServerHandle) -> None:
    msg, _rec = ask(server, "big.sem.test", "TXT", use_edns=0, payload=4096)
    assert msg.flags & dns.flags.TC  # 4096 asked, but our ceiling is 1232
