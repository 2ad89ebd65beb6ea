"""Batched UDP (`nameserver/_udpbatch.c` + `nameserver/udp.py`) over real loopback sockets.

- the C module alone: every reply goes to the datagram's own sender, None sends nothing, IPv6
  addresses come as the socket module gives them, an exception from `answer` still sends the
  replies gathered before it, a non-bytes reply is a TypeError, an empty socket reads nothing;
- a server answering bursts from 64 sockets at once (batches of many datagrams from many
  peers): each query gets exactly its own answer (ID and question), decoded by dnslib;
- replies the socket has no room for wait, bounded, and go out when it is writable.
"""
from __future__ import annotations

import asyncio
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import dns.message
import pytest
from dnslib import DNSRecord
from helpers.testzones import write_test_zones

from nameserver import _udpbatch  # type: ignore[attr-defined]
from nameserver import udp as udp_module
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.udp import UdpListener, udp_socket

HOST = "127.0.0.1"
QTYPES = {1: "A", 2: "NS", 6: "SOA"}


def bound(family: int = socket.AF_INET, host: str = HOST) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(2)
    return sock


def test_replies_go_to_each_sender_and_none_sends_nothing() -> None:
    server = bound()
    server.setblocking(False)
    clients = [bound() for _ in range(5)]
    with ExitStack() as stack:
        for sock in (server, *clients):
            stack.enter_context(sock)
        for i, client in enumerate(clients):
            client.sendto(b"q%d" % i, server.getsockname())
        time.sleep(0.05)
        seen: list[tuple[bytes, tuple]] = []

        def answer(data: bytes, address: tuple) -> bytes | None:
            seen.append((data, address))
            return None if data == b"q2" else data.upper()

        received, unsent = _udpbatch.serve(server.fileno(), answer, 32)
        assert (received, unsent) == (5, [])
        assert [address for _data, address in seen] == [c.getsockname() for c in clients]
        for i, client in enumerate(clients):
            if i == 2:
                with pytest.raises(TimeoutError):
                    client.settimeout(0.2)
                    client.recv(100)
            else:
                assert client.recvfrom(100) == (b"Q%d" % i, server.getsockname())
        assert _udpbatch.serve(server.fileno(), answer, 32) == (0, [])


def test_batch_size_bounds_one_call() -> None:
    server = bound()
    server.setblocking(False)
    client = bound()
    with server, client:
        for i in range(10):
            client.sendto(b"%d" % i, server.getsockname())
        time.sleep(0.05)
        assert _udpbatch.serve(server.fileno(), lambda d, a: d, 4)[0] == 4
        assert _udpbatch.serve(server.fileno(), lambda d, a: d, 64)[0] == 6
        assert [client.recv(10) for _ in range(10)] == [b"%d" % i for i in range(10)]
        with pytest.raises(ValueError):
            _udpbatch.serve(server.fileno(), lambda d, a: d, 65)


def test_ipv6_addresses_as_the_socket_module_gives_them() -> None:
    server = bound(socket.AF_INET6, "::1")
    server.setblocking(False)
    client = bound(socket.AF_INET6, "::1")
    with server, client:
        client.sendto(b"six", server.getsockname())
        time.sleep(0.05)
        addresses: list[tuple] = []
        _udpbatch.serve(server.fileno(), lambda d, a: addresses.append(a) or b"ok", 8)
        assert addresses == [client.getsockname()]
        assert client.recv(10) == b"ok"


def test_exception_sends_what_came_before_then_propagates() -> None:
    server = bound()
    server.setblocking(False)
    client = bound()
    with server, client:
        for data in (b"a", b"boom", b"c"):
            client.sendto(data, server.getsockname())
        time.sleep(0.05)

        def answer(data: bytes, address: tuple) -> bytes:
            if data == b"boom":
                raise ZeroDivisionError("boom")
            return data

        with pytest.raises(ZeroDivisionError):
            _udpbatch.serve(server.fileno(), answer, 8)
        assert client.recv(10) == b"a"
        client.sendto(b"x", server.getsockname())
        time.sleep(0.05)
        with pytest.raises(TypeError, match="not bytes or None"):
            _udpbatch.serve(server.fileno(), lambda d, a: 5, 8)


async def test_bursts_from_many_sockets_each_get_their_own_answer(tmp_path: Path) -> None:
    write_test_zones(tmp_path)
    config = ServerConfig(zones_dir=tmp_path, listen=((HOST, 0),), uvloop=False, rrl_rate=0)
    runner = build_server(ServerOptions(config=config, semantic=None))
    await runner.start()
    clients = [bound() for _ in range(64)]
    try:
        port = runner.addresses[0][1]
        names = ["www.sem.test.", "nope.sem.test.", "sem.test."]
        sent: dict[tuple[int, int], tuple[str, str]] = {}
        for i, client in enumerate(clients):
            client.setblocking(False)
            for k in range(3):  # three queries a socket, sent together: batches mix peers
                name, rdtype = names[(i + k) % 3], ("A", "SOA", "NS")[k]
                wire = dns.message.make_query(name, rdtype, id=i * 3 + k).to_wire()
                client.sendto(wire, (HOST, port))
                sent[(i, i * 3 + k)] = (name, rdtype)
        got: dict[tuple[int, int], tuple[str, str]] = {}
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            for i, client in enumerate(clients):
                while True:
                    try:
                        data = client.recv(65536)
                    except BlockingIOError:
                        break
                    record = DNSRecord.parse(data)
                    question = record.questions[0]
                    got[(i, record.header.id)] = (str(question.qname), QTYPES[question.qtype])
        assert got == sent
    finally:
        for client in clients:
            client.close()
        await runner.stop()


async def test_replies_without_room_wait_and_go_out_when_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udp_module, "MAX_WAITING", 3)
    sock = udp_socket(HOST, 0)
    listener = UdpListener(server=_NoServer(), sock=sock)  # type: ignore[arg-type]
    listener.start()
    client = bound()
    try:
        listener._wait([(b"r%d" % i, client.getsockname()) for i in range(5)])
        assert listener.dropped == 2
        await asyncio.sleep(0.05)
        assert [client.recv(10) for _ in range(3)] == [b"r0", b"r1", b"r2"]
        assert not listener._waiting
    finally:
        client.close()
        listener.close()


class _NoServer:
    """A server that is never asked (the listener only needs its rate limiter here)."""

    rrl = None
