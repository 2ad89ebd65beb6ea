"""IXFR (RFC 1995) from a real server whose zonefile was edited and reloaded three times: dnspython
applies our increments to each old version and gets the current one; dig shows a difference, not
the zone; an unknown serial gets the full zone; UDP answers fit or fall back to the SOA; the ACL holds."""
from __future__ import annotations

import re
import time
from typing import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest
from helpers.dnswire import dig, tcp_connect, tcp_read, tcp_send, udp_exchange
from helpers.server import ServerHandle, running_server
from helpers.testzones import PARENT, SERIAL, parent_zone, write_test_zones

V1, V2, V3, V4 = SERIAL, SERIAL + 1, SERIAL + 2, SERIAL + 3
DEADLINE = 15.0


def version(serial: int) -> str:
    """The text of sem.test. at each serial: v2 changes www, v3 rewrites six big TXT records and
    one small one and adds one, v4 changes the added one."""
    text = parent_zone(serial, "192.0.2.1" if serial == V1 else "192.0.2.99")
    if serial >= V3:
        for i in range(6):
            text = text.replace(f'big TXT "{i:02d}-', f'big TXT "{i:02d}-new-')
        text = text.replace('legal   TXT "legal"', 'legal   TXT "counsel"')
        text += f'added  TXT "{"v3" if serial == V3 else "v4"}"\n'
    return text


def zone_at(serial: int) -> dns.zone.Zone:
    return dns.zone.from_text(version(serial), relativize=False)


def served_serial(server: ServerHandle) -> int:
    reply = dns.message.from_wire(
        udp_exchange(server.host, server.port, dns.message.make_query(PARENT, "SOA").to_wire())
    )
    return reply.answer[0][0].serial


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    zones = write_test_zones(tmp_path_factory.mktemp("zones"))
    with running_server(zones, ["--axfr-allow", "127.0.0.1/32"]) as handle:
        # One answer first: the server installs its SIGHUP handler just after printing its ready
        # line, and a SIGHUP before that would end it.
        assert served_serial(handle) == V1
        for serial in (V2, V3, V4):
            (zones / f"{PARENT}zone").write_text(version(serial))
            handle.reload()
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and served_serial(handle) != serial:
                time.sleep(0.05)
            assert served_serial(handle) == serial, handle.log()
        yield handle


def ixfr_query(serial: int) -> dns.message.Message:
    return dns.xfr.make_query(zone_at(V1), serial=serial)[0]


def ixfr_records(server: ServerHandle, serial: int) -> list[str]:
    """Every answer RR of an IXFR over TCP, as text, in order (one RR per line)."""
    records: list[str] = []
    for message in dns.query.xfr(server.host, PARENT, rdtype=dns.rdatatype.IXFR, serial=serial, port=server.port,
                                 timeout=5, lifetime=20, relativize=False):
        records += [line for rrset in message.answer for line in rrset.to_text().splitlines()]
    return records


@pytest.mark.parametrize("old", [V1, V2, V3])
def test_dnspython_applies_our_ixfr_to_an_old_version_and_gets_the_current_one(server: ServerHandle, old: int) -> None:
    received = zone_at(old)
    query, _ = dns.xfr.make_query(received, serial=old)
    dns.query.inbound_xfr(server.host, received, query, port=server.port, timeout=10)
    assert received == zone_at(V4)
    expected = rf"IXFR sem\.test\. {old} -> {V4} to 127\.0\.0\.1 \(tcp\): incremental, {V4 - old} step"
    assert re.search(expected, server.log())


def test_ixfr_carries_only_the_difference_in_rfc1995_order(server: ServerHandle) -> None:
    soa = [r for r in ixfr_records(server, V3) if " SOA " in r]
    assert [int(r.split()[6]) for r in soa] == [V4, V3, V4, V4]
    rest = [r for r in ixfr_records(server, V3) if " SOA " not in r]
    assert rest == ['added.sem.test. 3600 IN TXT "v3"', 'added.sem.test. 3600 IN TXT "v4"']
    two_steps = ixfr_records(server, V2)
    assert [int(r.split()[6]) for r in two_steps if " SOA " in r] == [V4, V2, V3, V3, V4, V4]
    assert len(two_steps) == 4 + 2 + 2 * 7 + 1 + 2  # SOAs, legal, 6 big + 1 added (v3), v4's change


def dig_records(server: ServerHandle, *args: str) -> list[list[str]]:
    out = dig(server.host, server.port, *args)
    return [line.split() for line in out.splitlines() if line and not line.startswith(";")]


def test_dig_ixfr_shows_a_diff_not_the_zone(server: ServerHandle) -> None:
    full = dig_records(server, "AXFR", PARENT)
    diff = dig_records(server, f"IXFR={V1}", PARENT)
    assert len(diff) < len(full)
    owners = {r[0] for r in diff}
    assert "loop1.sem.test." in {r[0] for r in full} and "loop1.sem.test." not in owners
    assert ["www.sem.test.", "3600", "IN", "A", "192.0.2.1"] in diff  # deleted at v2
    assert ["www.sem.test.", "3600", "IN", "A", "192.0.2.99"] in diff  # added at v2
    assert diff[0][3] == diff[-1][3] == "SOA" and diff[0][6] == diff[-1][6] == str(V4)


def test_up_to_date_or_newer_serial_gets_one_soa(server: ServerHandle) -> None:
    for serial in (V4, V4 + 10):
        with tcp_connect(server.host, server.port) as sock:
            tcp_send(sock, ixfr_query(serial).to_wire())
            reply = dns.message.from_wire(tcp_read(sock), xfr=True)
        assert [(r.rdtype, len(r)) for r in reply.answer] == [(dns.rdatatype.SOA, 1)]
        assert reply.answer[0][0].serial == V4 and reply.rcode() == dns.rcode.NOERROR
    out = dig(server.host, server.port, f"IXFR={V4}", PARENT)
    assert len([line for line in out.splitlines() if line and not line.startswith(";")]) == 1


def test_unknown_serial_gets_the_full_zone(server: ServerHandle) -> None:
    received = zone_at(V1)
    query, _ = dns.xfr.make_query(received, serial=V1 - 100)
    dns.query.inbound_xfr(server.host, received, query, port=server.port, timeout=10)
    assert received == zone_at(V4)
    full = dig_records(server, "AXFR", PARENT)
    assert dig_records(server, f"IXFR={V1 - 100}", PARENT) == full
    assert (
        f"IXFR sem.test. {V1 - 100} -> {V4} to 127.0.0.1 (tcp): full transfer (serial {V1 - 100} not in the history)"
        in server.log()
    )


def test_ixfr_over_udp_when_it_fits_else_the_soa(server: ServerHandle) -> None:
    received = zone_at(V3)
    query, _ = dns.xfr.make_query(received, serial=V3)
    dns.query.inbound_xfr(server.host, received, query, port=server.port, timeout=5, udp_mode=dns.query.UDPMode.ONLY)
    assert received == zone_at(V4)
    assert f"IXFR sem.test. {V3} -> {V4} to 127.0.0.1 (udp): incremental over UDP" in server.log()
    for serial in (V2, V1 - 100):  # the v2 -> v3 step does not fit 1232 octets; an unknown serial neither
        with pytest.raises(dns.xfr.UseTCP):
            received = zone_at(V2)
            query, _ = dns.xfr.make_query(received, serial=serial)
            dns.query.inbound_xfr(server.host, received, query, port=server.port, timeout=5,
                                  udp_mode=dns.query.UDPMode.ONLY)
    received = zone_at(V2)
    query, _ = dns.xfr.make_query(received, serial=V2)
    dns.query.inbound_xfr(server.host, received, query, port=server.port, timeout=10,
                          udp_mode=dns.query.UDPMode.TRY_FIRST)  # SOA over UDP, then the increment over TCP
    assert received == zone_at(V4)
    reply = dns.message.from_wire(udp_exchange(server.host, server.port, ixfr_query(V4).to_wire()))
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.SOA] and reply.answer[0][0].serial == V4


def test_ixfr_refused_outside_the_acl_on_both_transports(server: ServerHandle) -> None:
    wire = ixfr_query(V3).to_wire()
    reply = dns.message.from_wire(udp_exchange(server.host, server.port, wire, source="127.0.0.2"))
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    with tcp_connect(server.host, server.port, source="127.0.0.2") as sock:
        tcp_send(sock, wire)
        reply = dns.message.from_wire(tcp_read(sock))
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    assert "Transfer failed" in dig(server.host, server.port, "-b", "127.0.0.2", f"IXFR={V3}", PARENT)


def test_ixfr_of_a_name_that_is_no_zone_apex_is_notauth(server: ServerHandle) -> None:
    query = dns.xfr.make_query(dns.zone.Zone("www.sem.test."), serial=V1)[0]
    with tcp_connect(server.host, server.port) as sock:
        tcp_send(sock, query.to_wire())
        assert dns.message.from_wire(tcp_read(sock)).rcode() == dns.rcode.NOTAUTH
