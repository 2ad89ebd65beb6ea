"""`semdns serve --workers N`: real servers on loopback, queries from many source ports (the kernel
spreads them over the main's and the workers' sockets by the client's address and port).

A worker says at its stop how many queries it answered and how many it forwarded to the main; the
tests read that from the server's log to prove that both processes answered.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Callable, TypeVar

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest
from helpers.server import ServerHandle, running_server
from helpers.shipped import ZONEFILES
from helpers.testzones import write_test_zones
from helpers.updates import ZONE, Key, registration, send, serial, write_keys

from codec import text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname

COUNTS = re.compile(r"worker (\d+) \(pid (\d+)\): answered (\d+) UDP queries, forwarded (\d+) to the main")
DEADLINE = 30.0
T = TypeVar("T")


def ask(server: ServerHandle, wire: bytes) -> bytes:
    """The reply to `wire` over UDP from a new socket (a new source port each time)."""
    for _attempt in range(3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5.0)
            sock.sendto(wire, (server.host, server.port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    raise AssertionError(f"no answer from {server.host}:{server.port}")


def query(name: str, rdtype: str, rdclass: str = "IN", edns: bool = True, text: str | None = None) -> bytes:
    options = [dns.edns.GenericOption(TEXT_OPTION, encode_text_option(text))] if text is not None else []
    message = dns.message.make_query(name, rdtype, rdclass, use_edns=0 if edns or options else False,
                                     options=options)
    message.id = 4242
    return message.to_wire()


def counts(log: str) -> dict[int, tuple[int, int]]:
    """Worker index: (answered, forwarded), from the lines the main logs as each worker stops."""
    return {int(m[1]): (int(m[3]), int(m[4])) for m in COUNTS.finditer(log)}


def children(pid: int) -> set[int]:
    """The worker processes (`nameserver.workers_child`) whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"nameserver.workers_child" in cmdline:
            found.add(int(entry.name))
    return found


def workers_of(main: int, count: int, without: int | None = None) -> set[int] | None:
    """The workers of `main` when there are `count` and `without` is not one of them; else None."""
    found = children(main)
    return found if len(found) == count and without not in found else None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(what: str, check: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """Poll `check()` until it gives something true (returned); fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline:g} s: {what}")


def everywhere(server: ServerHandle, wire: bytes, holds: Callable[[dns.message.Message], object],
               ports: int = 32) -> bool:
    """`holds(reply)` for the replies to `wire` sent from `ports` different source ports."""
    return all(holds(dns.message.from_wire(ask(server, wire))) for _ in range(ports))


def the_mix() -> list[bytes]:
    """Authoritative answers, a CNAME chain, NXDOMAIN, NODATA, a referral, a truncated answer,
    CHAOS, REFUSED, and semantic questions in the QNAME and the EDNS forms."""
    long_text = " ".join(["how do I appeal a judgment in a contract dispute after the deadline passed"] * 4)
    return [
        query("semantic.root.", "SOA"),
        query("legal.semantic.root.", "NS"),
        query("legal._route.semantic.root.", "TXT"),
        query("_llm._tcp.legal.semantic.root.", "SRV"),
        query("www.sem.test.", "A", edns=False),
        query("alias.sem.test.", "A"),
        query("nope.sem.test.", "A"),
        query("www.sem.test.", "MX"),
        query("host.sub.sem.test.", "A"),
        query("x.contract.legal.semantic.root.", "A"),
        query("big.sem.test.", "TXT", edns=False),
        query("version.bind.", "TXT", "CH"),
        query("example.org.", "A"),
        query(text_to_qname("statute of limitations for breach of contract", "semantic.root."), "SRV"),
        query(text_to_qname("what dose of ibuprofen is safe for a child", "semantic.root."), "TXT"),
        query(text_to_qname("why does my python list comprehension raise a NameError", "semantic.root."), "SRV"),
        query(text_to_qname("statute of limitations", "legal.semantic.root."), "A"),
        query(hashed_qname(long_text, "semantic.root."), "SRV", text=long_text),
    ]


def zones_with_tests(directory: Path) -> Path:
    shutil.copytree(ZONEFILES, directory)
    write_test_zones(directory)
    return directory


@pytest.mark.model
def test_two_processes_answer_byte_for_byte_as_one(tmp_path: Path) -> None:
    zones = zones_with_tests(tmp_path / "zones")
    mix = the_mix()
    with running_server(zones, ("--workers", "1")) as one:
        expected = [ask(one, wire) for wire in mix]
    assert dns.message.from_wire(expected[6]).rcode() == dns.rcode.NXDOMAIN
    assert dns.message.from_wire(expected[-5]).answer  # the semantic answers are answers (CNAMEs)
    rounds = 12
    with running_server(zones, ("--workers", "2")) as two:
        workers = children(two.process.pid)
        assert len(workers) == 1
        for _ in range(rounds):
            for wire, reference in zip(mix, expected):
                assert ask(two, wire)[2:] == reference[2:], dns.message.from_wire(wire).question
    assert not any(alive(pid) for pid in workers)
    answered, forwarded = counts(two.log())[1]
    assert 0 < answered < rounds * len(mix), "both the main and the worker answered"
    assert forwarded == 0


def keys_and_flags(tmp: Path) -> tuple[list[Key], list[str]]:
    keys = write_keys(tmp / "keys.conf", "engine1", "engine2")
    flags = ["--no-semantic", "--tsig-keys", str(tmp / "keys.conf"), "--journal", str(tmp / "journal"),
             "--health-interval", "600", "--workers", "2"]
    return [keys["engine1"], keys["engine2"]], flags


def test_an_update_to_any_process_is_applied_once_and_reaches_every_worker(tmp_path: Path) -> None:
    keys, flags = keys_and_flags(tmp_path)
    registrations = 12  # each from its own source port: some reach the worker (all go to the main: 2**-12)
    with running_server(ZONEFILES, flags) as server:
        before = serial(server)
        for i in range(registrations):
            message = registration(keys[i % 2], f"llm-{9400 + i}", 9400 + i)
            reply = dns.query.udp(message, server.host, port=server.port, timeout=5)  # a new socket each time
            assert reply.rcode() == dns.rcode.NOERROR, reply
        assert serial(server) == before + registrations  # the main's (TCP): each applied once, whoever received it
        for i in range(registrations):
            wire = query(f"llm-{9400 + i}.{ZONE}", "A")
            wait_for(f"llm-{9400 + i} seen from every process",
                     lambda: everywhere(server, wire, lambda r: bool(r.answer)))
        gone = registration(keys[0], "llm-9400", 9400, delete=True)
        assert dns.query.udp(gone, server.host, port=server.port, timeout=5).rcode() == dns.rcode.NOERROR
        wire = query(f"llm-9400.{ZONE}", "A")
        wait_for("the removal seen from every process", lambda: everywhere(server, wire, lambda r: not r.answer))
    journal = (tmp_path / "journal" / f"{ZONE}jnl").read_text().splitlines()
    assert len(journal) == registrations + 1
    answered, forwarded = counts(server.log())[1]
    assert forwarded >= 1 and answered >= 1


def test_a_stopped_worker_delays_only_itself(tmp_path: Path) -> None:
    """Registrations while the worker is frozen (SIGSTOP): each ships the ~100 KB legal zone, more
    than its channel buffers; the main keeps answering UPDATEs over TCP, and once thawed the worker
    catches up with all of them."""
    keys, flags = keys_and_flags(tmp_path)
    with running_server(ZONEFILES, flags) as server:
        (worker,) = wait_for("the worker", lambda: children(server.process.pid))
        before = serial(server)
        os.kill(worker, signal.SIGSTOP)
        try:
            for i in range(12):
                assert send(server, registration(keys[i % 2], f"llm-{9500 + i}", 9500 + i)).rcode() == 0
                assert serial(server) == before + i + 1
        finally:
            os.kill(worker, signal.SIGCONT)
        wire = query(f"llm-9511.{ZONE}", "A")
        wait_for("the last registration seen from every process",
                 lambda: everywhere(server, wire, lambda r: bool(r.answer)))
        assert children(server.process.pid) == {worker}  # caught up, not restarted


def test_a_killed_worker_comes_back_with_the_current_zones_and_sigterm_leaves_no_process(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    pid_file = tmp_path / "serve.pid"
    www = query("www.sem.test.", "A")
    with running_server(zones, ("--no-semantic", "--workers", "3", "--pid-file", str(pid_file))) as server:
        main = server.process.pid
        assert pid_file.read_text().strip() == str(main)
        first = wait_for("two workers", lambda: workers_of(main, 2))
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        now = wait_for("the killed worker replaced", lambda: workers_of(main, 2, without=victim))
        (replacement,) = now - first
        wait_for("the new worker ready", lambda: f"(pid {replacement}) ready" in server.log())
        assert "exited with signal SIGKILL; starting it again" in server.log()
        zone = zones / "sem.test.zone"
        zone.write_text(zone.read_text().replace("2026112301", "2026112302").replace("192.0.2.1", "192.0.2.99"))
        server.reload()
        wait_for("the reload seen from every process",
                 lambda: everywhere(server, www, lambda r: r.answer and r.answer[0][0].address == "192.0.2.99"))
    assert not alive(main)
    assert not any(alive(pid) for pid in first | now)
    assert len(counts(server.log())) == 2  # both workers stopped through the main


def test_workers_exit_when_the_main_is_killed(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    with running_server(zones, ("--no-semantic", "--workers", "2")) as server:
        workers = wait_for("a worker", lambda: children(server.process.pid))
        server.process.kill()
        server.process.wait()
        wait_for("no worker left", lambda: not any(alive(pid) for pid in workers))


def test_one_process_keeps_its_port_to_itself(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    with running_server(zones, ("--no-semantic",)) as server:
        assert not children(server.process.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError):
                intruder.bind((server.host, server.port))
