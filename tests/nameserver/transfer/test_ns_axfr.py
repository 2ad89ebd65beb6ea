"""Zone transfers from a real server: dig AXFR, dnspython inbound xfr, IXFR without a client SOA
(a full transfer), the ACL. Incremental IXFR: test_ns_ixfr*.py."""
from __future__ import annotations

import re
from typing import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import dnslib
import pytest
from helpers.dnswire import dig, tcp_connect, tcp_exchange, tcp_read, tcp_send, udp_exchange
from helpers.server import ServerHandle, running_server
from helpers.testzones import write_test_zones

BULK = "bulk.test."
BULK_RECORDS = 3000


def bulk_zone() -> str:
    lines = [
        f"$ORIGIN {BULK}",
        "$TTL 300",
        "@ SOA ns1.bulk.test. hostmaster.bulk.test. ( 2026112301 3600 900 1209600 300 )",
        "@ NS ns1.bulk.test.",
        "ns1 A 127.0.0.1",
    ]
    lines += [f"host{i} A 10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(BULK_RECORDS)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    zones = write_test_zones(tmp_path_factory.mktemp("zones"))
    (zones / f"{BULK}zone").write_text(bulk_zone())
    with running_server(zones, ["--axfr-allow", "127.0.0.1/32"]) as handle:
        yield handle


def test_dig_axfr_multi_message_soa_first_and_last(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "AXFR", BULK)
    records = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    assert records[0][3] == "SOA" and records[-1][3] == "SOA"
    assert sum(1 for r in records if r[3] == "A") == BULK_RECORDS + 1
    size = re.search(r"XFR size: (\d+) records \(messages (\d+)", out)
    assert size and int(size[1]) == BULK_RECORDS + 4 and int(size[2]) > 1


def test_dnspython_inbound_xfr_equals_the_zonefile(server: ServerHandle) -> None:
    received = dns.zone.Zone(BULK, relativize=False)
    dns.query.inbound_xfr(server.host, received, port=server.port, timeout=10)
    expected = dns.zone.from_text(bulk_zone(), relativize=False)
    assert received == expected


def test_axfr_of_small_zone_with_dnslib(server: ServerHandle) -> None:
    wire = tcp_exchange(server.host, server.port, dns.message.make_query("sem.test.", "AXFR").to_wire())
    rec = dnslib.DNSRecord.parse(wire)
    types = [dnslib.QTYPE[rr.rtype] for rr in rec.rr]
    assert types[0] == "SOA" and types[-1] == "SOA" and "SRV" in types and rec.header.aa == 1


def test_ixfr_without_a_client_soa_is_answered_with_a_full_transfer(server: ServerHandle) -> None:
    query = dns.message.make_query("sem.test.", "IXFR")
    with tcp_connect(server.host, server.port) as sock:
        tcp_send(sock, query.to_wire())
        reply = dns.message.from_wire(tcp_read(sock), xfr=True)
    assert reply.id == query.id and reply.question[0].rdtype == dns.rdatatype.IXFR
    assert reply.answer[0].rdtype == dns.rdatatype.SOA and reply.answer[1].rdtype != dns.rdatatype.SOA


def test_axfr_question_case_and_id_are_the_clients(server: ServerHandle) -> None:
    query = dns.message.make_query("SeM.TeSt.", "AXFR")
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, query.to_wire()), xfr=True)
    assert reply.id == query.id and reply.question[0].name.to_text() == "SeM.TeSt."


def test_axfr_refused_outside_the_acl(server: ServerHandle) -> None:
    query = dns.message.make_query("sem.test.", "AXFR")
    rec = dnslib.DNSRecord.parse(tcp_exchange(server.host, server.port, query.to_wire(), source="127.0.0.2"))
    assert rec.header.rcode == dns.rcode.REFUSED and not rec.rr
    out = dig(server.host, server.port, "-b", "127.0.0.2", "AXFR", "sem.test")
    assert "Transfer failed" in out


def test_axfr_over_udp_is_formerr_and_unknown_zone_notauth(server: ServerHandle) -> None:
    query = dns.message.make_query("sem.test.", "AXFR")
    assert dns.message.from_wire(udp_exchange(server.host, server.port, query.to_wire())).rcode() == dns.rcode.FORMERR
    query = dns.message.make_query("www.sem.test.", "AXFR")
    assert dns.message.from_wire(tcp_exchange(server.host, server.port, query.to_wire())).rcode() == dns.rcode.NOTAUTH
