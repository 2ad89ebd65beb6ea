"""The TCP listener's limits, driven past each one over real sockets against an in-process server.

- back-pressure: a client that pipelines 10^5 queries and never reads leaves the server holding a
  bounded buffer (answers stop at the high-water mark, reading stops with them);
- the per-address cap: one address cannot open more than `max_per_address` connections, and
  another address still gets in;
- the whole-message deadline: a query trickled in byte by byte is dropped `message_timeout`
  seconds after its first byte (single bytes do not reset the idle timer);
- 256 slow sockets from 127.0.0.1 do not keep 127.0.0.2 from being answered.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import time
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import AsyncIterator

import dns.message
import dns.rcode
from helpers.dnswire import tcp_connect, tcp_exchange, tcp_read, tcp_send
from helpers.testzones import write_test_zones

from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.runner import ServerRunner

HOST = "127.0.0.1"
OTHER = "127.0.0.2"
PIPELINED = 100_000
BUFFER_BOUND = 2 * 1024 * 1024


@asynccontextmanager
async def serving(zones: Path, **config: object) -> AsyncIterator[ServerRunner]:
    """A started plain-DNS server on a free loopback port, with `config`'s fields set."""
    write_test_zones(zones)
    server_config = ServerConfig(zones_dir=zones, listen=((HOST, 0),), uvloop=False, **config)  # type: ignore[arg-type]
    runner = build_server(ServerOptions(config=server_config, semantic=None))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def query(name: str = "www.sem.test.", rdtype: str = "A") -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


def answered(port: int, source: str | None = None) -> bool:
    """True when a TCP query from `source` gets its answer (NOERROR with records)."""
    reply = dns.message.from_wire(tcp_exchange(HOST, port, query(), source=source))
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True when the server closes (or resets) `sock` within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionError:
        return True


def pipeline_without_reading(port: int) -> tuple[int, socket.socket]:
    """Send up to `PIPELINED` big-TXT queries on one connection, never reading; stop when the
    send stalls (the server stopped reading). Returns how many were sent and the open socket."""
    frame = struct.pack("!H", len(wire := query("big.sem.test.", "TXT"))) + wire
    sock = tcp_connect(HOST, port, timeout=1.0)
    sent = 0
    batch = 1000
    try:
        while sent < PIPELINED:
            sock.sendall(frame * batch)
            sent += batch
    except socket.timeout:
        pass
    return sent, sock


async def test_unread_pipelined_answers_stay_within_the_high_water_mark(tmp_path: Path) -> None:
    async with serving(tmp_path) as runner:
        port = runner.addresses[0][1]
        sent, sock = await asyncio.to_thread(pipeline_without_reading, port)
        with sock:
            await asyncio.sleep(0.5)  # the server answers what it read, up to the high-water mark
            listener = runner._tcp[0]
            held = listener.buffered()
            assert sent >= 1000
            assert held <= BUFFER_BOUND, f"{held} bytes held after {sent} unread queries"
            assert await asyncio.to_thread(answered, port)  # others are still served
            first = dns.message.from_wire(await asyncio.to_thread(tcp_read, sock))
            assert first.answer  # and reading resumes the pipelined answers


async def test_per_address_cap_refuses_the_extra_connection_only(tmp_path: Path) -> None:
    async with serving(tmp_path, tcp_max_per_address=4) as runner:
        port = runner.addresses[0][1]

        def exercise() -> None:
            held = [tcp_connect(HOST, port) for _ in range(4)]
            try:
                for sock in held:
                    tcp_send(sock, query())
                    assert tcp_read(sock)
                extra = tcp_connect(HOST, port)
                with extra:
                    assert closed_by_server(extra, 2.0)
                assert answered(port, source=OTHER)
                held.pop().close()
                time.sleep(0.2)
                assert answered(port)  # a slot of 127.0.0.1 came free
            finally:
                for sock in held:
                    sock.close()

        await asyncio.to_thread(exercise)


async def test_a_query_trickled_byte_by_byte_is_dropped_at_the_message_deadline(tmp_path: Path) -> None:
    async with serving(tmp_path, tcp_message_timeout=0.6, tcp_idle_timeout=30.0) as runner:
        port = runner.addresses[0][1]

        def trickle() -> float:
            wire = query()
            frame = struct.pack("!H", len(wire)) + wire
            with tcp_connect(HOST, port) as sock:
                start = time.monotonic()
                for octet in frame[:-1]:
                    try:
                        sock.send(bytes([octet]))
                    except ConnectionError:
                        break
                    if closed_by_server(sock, 0.15):
                        break
                else:
                    raise AssertionError("the whole query but one byte was read without a drop")
                return time.monotonic() - start

        def split_in_time() -> dns.message.Message:
            wire = query()
            frame = struct.pack("!H", len(wire)) + wire
            with tcp_connect(HOST, port) as sock:
                sock.sendall(frame[:5])
                time.sleep(0.2)
                sock.sendall(frame[5:])
                return dns.message.from_wire(tcp_read(sock))

        elapsed = await asyncio.to_thread(trickle)
        assert 0.5 <= elapsed <= 3.0
        assert (await asyncio.to_thread(split_in_time)).answer


async def test_slow_sockets_of_one_address_do_not_starve_another(tmp_path: Path) -> None:
    async with serving(tmp_path) as runner:
        port = runner.addresses[0][1]

        def slowloris_then_ask() -> tuple[bool, bool]:
            slow = []
            try:
                for _ in range(256):
                    sock = tcp_connect(HOST, port)
                    with suppress(ConnectionError):
                        sock.send(b"\x00")
                    slow.append(sock)
                return answered(port, source=OTHER), answered(port, source=OTHER)
            finally:
                for sock in slow:
                    sock.close()

        assert await asyncio.to_thread(slowloris_then_ask) == (True, True)
