"""SIGHUP swaps in changed zone data (past the wire cache), and NOTIFY reaches a secondary."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import dns.message
import dns.opcode
import dns.rrset
from helpers.dnswire import udp_exchange
from helpers.server import running_server
from helpers.testzones import write_test_zones

DEADLINE = 15.0


def www(host: str, port: int) -> str:
    reply = dns.message.from_wire(udp_exchange(host, port, dns.message.make_query("www.sem.test.", "A").to_wire()))
    return reply.answer[0][0].to_text()


def test_sighup_reload_swaps_data_and_notifies(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as secondary:
        secondary.bind(("127.0.0.1", 0))
        secondary.settimeout(DEADLINE)
        notify_to = f"127.0.0.1:{secondary.getsockname()[1]}"
        with running_server(zones, ["--no-semantic", "--notify", notify_to]) as server:
            assert www(server.host, server.port) == "192.0.2.1"
            assert www(server.host, server.port) == "192.0.2.1"  # now in the wire cache
            write_test_zones(zones, serial=2026112302, www="192.0.2.99")
            server.reload()
            notified: set[str] = set()
            while notified != {"sem.test.", "child.sem.test."}:  # both serials rose
                wire, peer = secondary.recvfrom(65535)
                notify = dns.message.from_wire(wire)
                assert notify.opcode() == dns.opcode.NOTIFY
                notified.add(notify.question[0].name.to_text())
                secondary.sendto(dns.message.make_response(notify).to_wire(), peer)
            deadline = time.monotonic() + DEADLINE
            while www(server.host, server.port) != "192.0.2.99" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert www(server.host, server.port) == "192.0.2.99"


def test_broken_zone_refuses_to_start_with_file_and_line(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    path = zones / "sem.test.zone"
    path.write_text(path.read_text() + "broken IN A not-an-address\n")
    try:
        with running_server(zones, ["--no-semantic"]):
            raise AssertionError("the server started on a broken zone")
    except RuntimeError as exc:
        message = str(exc)
    assert "refusing to start" in message and f"{path}:" in message


def test_sighup_right_after_ready_reloads_instead_of_killing(tmp_path: Path) -> None:
    # `ready` is printed only once SIGHUP is handled: a supervisor may reload at once.
    zones = write_test_zones(tmp_path / "zones")
    with running_server(zones, ["--no-semantic"]) as server:
        write_test_zones(zones, serial=2026112302, www="192.0.2.99")
        server.reload()
        deadline = time.monotonic() + DEADLINE
        while server.process.poll() is None and www(server.host, server.port) != "192.0.2.99" \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.process.poll() is None and www(server.host, server.port) == "192.0.2.99"


def test_a_packet_with_a_class_any_record_leaves_later_zone_records_readable(tmp_path: Path) -> None:
    # dnspython cached GenericRdata for (ANY, AAAA) from the packet, then used it for the first IN
    # AAAA it met: the zone's next version failed to load (`common.rdataclasses`)
    zones = tmp_path / "zones"
    zones.mkdir()
    zone = zones / "p.test.zone"
    zone.write_text("$ORIGIN p.test.\n$TTL 60\n@ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
    with running_server(zones, ["--no-semantic"]) as server:
        query = dns.message.make_query("ns1.p.test.", "A")
        query.additional.append(dns.rrset.from_text("x.", 0, "ANY", "TYPE28", r"\# 16 " + "00" * 16))
        assert dns.message.from_wire(udp_exchange(server.host, server.port, query.to_wire())).answer
        zone.write_text(zone.read_text().replace("host 1 ", "host 2 ") + "www AAAA 2001:db8::1\n")
        server.reload()
        deadline = time.monotonic() + DEADLINE
        asked = dns.message.make_query("www.p.test.", "AAAA").to_wire()
        while not dns.message.from_wire(udp_exchange(server.host, server.port, asked)).answer:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        reply = dns.message.from_wire(udp_exchange(server.host, server.port, asked))
        assert reply.answer[0][0].to_text() == "2001:db8::1"
