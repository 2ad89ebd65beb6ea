"""The UDP hot path (`nameserver/_hotpath.c` + `nameserver/udp.py`) over real loopback sockets.

- the C module alone: every reply goes to the datagram's own sender, None sends nothing, IPv6
  addresses come as the socket module gives them, an exception from `answer` still sends the
  replies gathered before it, a non-bytes reply is a TypeError, an empty socket reads nothing;
- a server answering bursts from 64 sockets at once (batches of many datagrams from many
  peers): each query gets exactly its own answer (ID and question), decoded by dnslib;
- replies the socket has no room for wait, bounded, and go out when it is writable;
- wire cache hits answered in C: the same octets as the Python path gives (ID and QNAME case the
  query's), counted as hits; whatever the C cannot serve (a smaller UDP size, an entry with an
  expiry, a catalog swapped in the same batch) goes to Python; with rate limiting, metrics or a
  query log on, the C answers nothing itself.
"""
from __future__ import annotations

import asyncio
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import pytest
from dnslib import DNSRecord
from helpers.testzones import write_test_zones

from nameserver import _hotpath  # type: ignore[attr-defined]
from nameserver import udp as udp_module
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.sockets import udp_socket
from nameserver.udp import UdpListener

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

        received, unsent, hits = _hotpath.serve(server.fileno(), answer, 32, None)
        assert (received, unsent, hits) == (5, [], 0)
        assert [address for _data, address in seen] == [c.getsockname() for c in clients]
        for i, client in enumerate(clients):
            if i == 2:
                with pytest.raises(TimeoutError):
                    client.settimeout(0.2)
                    client.recv(100)
            else:
                assert client.recvfrom(100) == (b"Q%d" % i, server.getsockname())
        assert _hotpath.serve(server.fileno(), answer, 32, None) == (0, [], 0)


def test_batch_size_bounds_one_call() -> None:
    server = bound()
    server.setblocking(False)
    client = bound()
    with server, client:
        for i in range(10):
            client.sendto(b"%d" % i, server.getsockname())
        time.sleep(0.05)
        assert _hotpath.serve(server.fileno(), lambda d, a: d, 4, None)[0] == 4
        assert _hotpath.serve(server.fileno(), lambda d, a: d, 64, None)[0] == 6
        assert [client.recv(10) for _ in range(10)] == [b"%d" % i for i in range(10)]
        with pytest.raises(ValueError):
            _hotpath.serve(server.fileno(), lambda d, a: d, 65, None)


def test_ipv6_addresses_as_the_socket_module_gives_them() -> None:
    server = bound(socket.AF_INET6, "::1")
    server.setblocking(False)
    client = bound(socket.AF_INET6, "::1")
    with server, client:
        client.sendto(b"six", server.getsockname())
        time.sleep(0.05)
        addresses: list[tuple] = []
        _hotpath.serve(server.fileno(), lambda d, a: addresses.append(a) or b"ok", 8, None)
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
            _hotpath.serve(server.fileno(), answer, 8, None)
        assert client.recv(10) == b"a"
        client.sendto(b"x", server.getsockname())
        time.sleep(0.05)
        with pytest.raises(TypeError, match="not bytes or None"):
            _hotpath.serve(server.fileno(), lambda d, a: 5, 8, None)


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
    sock = udp_socket(HOST, 0, reuse_port=False)
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


def exchange(sock: socket.socket, wire: bytes, port: int) -> bytes:
    sock.sendto(wire, (HOST, port))
    return sock.recv(65536)


async def started(zones: Path, **config: object):  # type: ignore[no-untyped-def]
    write_test_zones(zones)
    server_config = ServerConfig(zones_dir=zones, listen=((HOST, 0),), uvloop=False, **config)  # type: ignore[arg-type]
    runner = build_server(ServerOptions(config=server_config, semantic=None))
    await runner.start()
    return runner


async def test_cache_hits_answered_in_c_are_what_python_gives(tmp_path: Path) -> None:
    runner = await started(tmp_path, rrl_rate=0)
    client = bound()
    try:
        port = runner.addresses[0][1]
        server = runner.server
        assert server.fast_cache() is not None
        for name, rdtype in (("www.sem.test.", "A"), ("nope.sem.test.", "A"), ("sem.test.", "NS")):
            first = dns.message.make_query(name, rdtype, id=1)
            fresh = await asyncio.to_thread(exchange, client, first.to_wire(), port)  # rendered, then stored
            hits = server.wirecache.hits
            again = dns.message.make_query(name.upper(), rdtype, id=2)
            cached = await asyncio.to_thread(exchange, client, again.to_wire(), port)
            assert server.wirecache.hits == hits + 1  # the C's hit, told to the cache's count
            end = 12 + len(dns.name.from_text(name).to_wire())
            assert cached[:2] == b"\x00\x02" and cached[12:end] == again.to_wire()[12:end]
            assert cached[2:12] + cached[end:] == fresh[2:12] + fresh[end:]
            assert DNSRecord.parse(cached).header.id == 2
    finally:
        client.close()
        await runner.stop()


def test_an_answer_larger_than_the_clients_size_goes_to_python() -> None:
    class Store:
        current: object = object()

    store = Store()
    server = bound()
    server.setblocking(False)
    client = bound()
    with server, client:
        for payload, expected in ((1232, b"python"), (2000, b"cached"), (4096, b"cached")):
            query = dns.message.make_query("www.sem.test.", "A", id=7, use_edns=0, payload=payload).to_wire()
            cached = query[:2] + b"\x80" + query[3:] + b"cached"  # the whole answer: 2,000 octets needed
            entries = {_hotpath.locate(query, b"u", 4096)[0] + b"W": (cached, None, None, (), 2000)}
            client.sendto(query, server.getsockname())
            time.sleep(0.05)
            _hotpath.serve(server.fileno(), lambda d, a: b"python", 8, (entries, store, store.current, 4096))
            assert client.recv(4096)[-6:] == expected


def test_only_entries_for_the_catalog_lifetime_and_the_current_catalog() -> None:
    class Store:
        current: object = object()

    store = Store()
    query = dns.message.make_query("www.sem.test.", "A", id=7).to_wire()
    key = _hotpath.locate(query, b"u", 4096)[0] + b"W"
    answer = bytearray(query)
    answer[2] |= 0x80
    answer = bytes(answer)
    server = bound()
    server.setblocking(False)
    client = bound()
    with server, client:
        def ask(entries: dict, owner: object, answer_fn) -> tuple:  # type: ignore[no-untyped-def]
            client.sendto(query, server.getsockname())
            client.sendto(query, server.getsockname())
            time.sleep(0.05)
            result = _hotpath.serve(server.fileno(), answer_fn, 8, (entries, store, owner, 4096))
            return result, [client.recv(100) for _ in range(2)]

        entries = {key: (answer, None, None, (), 0)}
        result, replies = ask(entries, store.current, lambda d, a: b"python")
        assert result == (2, [], 2) and replies == [answer, answer]
        entries = {key: (answer, 123.0, None, (), 0)}  # an expiry: Python counts it down or drops it
        result, replies = ask(entries, store.current, lambda d, a: b"python")
        assert result == (2, [], 0) and replies == [b"python", b"python"]
        entries = {key: (answer, None, None, (), 0)}
        result, replies = ask(entries, object(), lambda d, a: b"python")  # not this catalog's entries
        assert result == (2, [], 0)

        def swapping(data: bytes, address: tuple) -> bytes:
            store.current = object()  # e.g. an UPDATE answered in this batch
            return b"python"

        entries = {b"another key": (answer, None, None, (), 0), key: (answer, None, None, (), 0)}
        client.sendto(b"\x00" * 20, server.getsockname())  # not plain: Python answers, and swaps
        owner = store.current
        result, replies = ask(entries, owner, swapping)
        assert result == (3, [], 0) and replies == [b"python", b"python"]
        assert client.recv(100) == b"python"


async def test_rate_limiting_metrics_or_a_query_log_keep_every_reply_in_python(tmp_path: Path) -> None:
    from nameserver.build import ObserveOptions

    for config, observe in (({"rrl_rate": 20}, None), ({"rrl_rate": 0}, ObserveOptions(count=True))):
        write_test_zones(tmp_path)
        server_config = ServerConfig(zones_dir=tmp_path, listen=((HOST, 0),), uvloop=False, **config)  # type: ignore[arg-type]
        options = ServerOptions(config=server_config, semantic=None, **({"observe": observe} if observe else {}))
        runner = build_server(options)
        runner.load()
        assert runner.server.fast_cache() is None
