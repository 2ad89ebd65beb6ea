"""The SDK's DNS transport: a round of queries to one server, sent together, with what each cost.

A resolution asks in *rounds* (`sdk.steps.resolve_steps`): queries that need nothing from each
other go out together, so a round costs one round trip, not one per query. `udp_round` (blocking)
and `udp_round_async` send every query of a round over UDP at once, match the replies by ID and
question, resend a query whose reply is late (after `retry` seconds, then twice as long each time,
until `timeout`), and ask over TCP where a reply comes back truncated (TC) or the query itself is
larger than the 1,232 octets we advertise. Each query leaves an `Exchange` record: transports,
datagrams sent, octets each way, and the seconds from first send to its reply (the server's time
plus loopback; what the client spends building and parsing is not in it).
"""
from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import dns.exception
import dns.rdatatype

from codec.edns_text import TEXT_OPTION
from sdk.message import TC, MalformedReply, Query, Reply, read_reply
from sdk.route import needs_tcp

Server = tuple[str, int]
RETRY = 0.5  # seconds before a first resend until replies have been timed, and at most after
MIN_RETRY = 0.1  # never sooner: a resend is another resolution for a resolver still at work


@dataclass(frozen=True)
class Exchange:
    """One query of a resolution and what answering it took."""

    qname: str
    rdtype: str
    text_option: bool  # the query carried the question in EDNS option 65001 (the EDNS form)
    transports: tuple[str, ...]  # ("udp",), ("udp", "tcp") after TC, ("tcp",) for a large query
    datagrams: int  # UDP datagrams sent (1: no resend)
    query_octets: int
    reply_octets: int  # of the reply used (the TCP one after TC)
    seconds: float  # first send -> reply in hand (server + network)
    server: str
    started: float = 0.0  # time.perf_counter() at the first send (queries of a round overlap)

    @property
    def retries(self) -> int:
        return max(0, self.datagrams - 1)


Observer = Callable[[Exchange], None]


class RetryTimer:
    """When to send a query again: RFC 6298's estimate (srtt + 4 x rttvar) of the replies timed so
    far (Karn: only those answered by the first datagram), within [`floor`, `ceiling`]; `ceiling`
    before any reply. A dropped reply (a server's rate limit drops every other limited reply)
    then costs a few round trips, not a fixed half second."""

    def __init__(self, ceiling: float = RETRY, floor: float = MIN_RETRY) -> None:
        self.ceiling, self.floor = ceiling, max(0.0, min(floor, ceiling))
        self.srtt: float | None = None
        self.rttvar = 0.0

    def observe(self, exchange: Exchange) -> None:
        if exchange.datagrams != 1 or exchange.transports != ("udp",):
            return
        sample = exchange.seconds
        if self.srtt is None:
            self.srtt, self.rttvar = sample, sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample

    def timeout(self) -> float:
        if self.srtt is None:
            return self.ceiling
        return max(self.floor, min(self.ceiling, self.srtt + 4 * self.rttvar))


def _record(query: Query, wire: bytes, transports: tuple[str, ...], datagrams: int,
            reply_octets: int, seconds: float, server: Server, started: float) -> Exchange:
    return Exchange(
        qname=query.name, rdtype=dns.rdatatype.to_text(dns.rdatatype.RdataType.make(query.rdtype)),
        text_option=any(code == TEXT_OPTION for code, _ in query.options), transports=transports,
        datagrams=datagrams, query_octets=len(wire), reply_octets=reply_octets, seconds=seconds,
        server=f"{server[0]}:{server[1]}", started=started,
    )


def _unique_ids(queries: Sequence[Query]) -> None:
    """Give the queries of one round distinct IDs (replies are matched by ID)."""
    seen: set[int] = set()
    for query in queries:
        while query.id in seen:
            query.id = (query.id + 1) & 0xFFFF
        seen.add(query.id)


def _family(server: Server) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in server[0] else socket.AF_INET


def _answer(query: Query, data: bytes) -> Reply | None:
    """`data` read as the reply to `query`, or None (not a DNS message, or not its reply)."""
    try:
        reply = read_reply(data)
    except MalformedReply:
        return None
    return reply if query.is_response(reply) else None


def tcp_exchange(query: Query, wire: bytes, server: Server, timeout: float) -> tuple[Reply, int]:
    """(the reply, its octets) of `query` over TCP (RFC 7766: two-octet length prefix); raises
    `dns.exception.Timeout`, `OSError`, `EOFError` (the server closed early) or `MalformedReply`."""
    deadline = time.perf_counter() + timeout
    try:
        with socket.create_connection(server, timeout=timeout) as sock:
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(_receive(sock, 2, deadline), "big")
            data = _receive(sock, size, deadline)
    except socket.timeout:
        raise dns.exception.Timeout(timeout=timeout) from None
    return _tcp_reply(query, data)


def _tcp_reply(query: Query, data: bytes) -> tuple[Reply, int]:
    """(the reply, its octets) read from a TCP message, which must answer `query`."""
    reply = read_reply(data)
    if not query.is_response(reply):
        raise MalformedReply(f"TCP reply to another query (ID {reply.id}, question {reply.question})")
    return reply, len(data)


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        sock.settimeout(max(0.001, deadline - time.perf_counter()))
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return data


def udp_round(queries: Sequence[Query], server: Server, timeout: float, retry: float = RETRY,
              observer: Observer | None = None) -> list[Reply]:
    """The replies to `queries` from `server`, in order (blocking). Raises `dns.exception.Timeout`
    when some reply is not in within `timeout`, `OSError` when the server refuses (ICMP)."""
    _unique_ids(queries)
    wires = [query.to_wire() for query in queries]
    replies: list[Reply | None] = [None] * len(queries)
    octets = [0] * len(queries)
    took = [0.0] * len(queries)
    datagrams = [0] * len(queries)
    transports: list[tuple[str, ...]] = [("udp",)] * len(queries)
    start = time.perf_counter()
    deadline = start + timeout
    pending = {i for i, wire in enumerate(wires) if not needs_tcp(wire)}  # larger ones go by TCP
    by_id = {queries[i].id: i for i in pending}
    if pending:
        with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
            sock.connect(server)
            resend_at = {}
            for i in pending:
                sock.send(wires[i])
                datagrams[i] = 1
                resend_at[i] = start + retry
            while pending:
                now = time.perf_counter()
                if now >= deadline:
                    raise dns.exception.Timeout(timeout=timeout)
                for i in [i for i in pending if resend_at[i] <= now]:
                    sock.send(wires[i])
                    datagrams[i] += 1
                    resend_at[i] = now + retry * 2 ** (datagrams[i] - 1)
                sock.settimeout(max(0.0, min(deadline, *(resend_at[i] for i in pending)) - now))
                try:
                    data = sock.recv(65535)
                except socket.timeout:
                    continue
                arrived = time.perf_counter()
                index = by_id.get(int.from_bytes(data[:2], "big")) if len(data) >= 2 else None
                if index is None or index not in pending:
                    continue
                reply = _answer(queries[index], data)
                if reply is None:
                    continue  # not a reply we can read, or to another question: wait for the real one
                pending.discard(index)
                replies[index], octets[index], took[index] = reply, len(data), arrived - start
    for i, query in enumerate(queries):
        udp_reply = replies[i]
        if udp_reply is not None and not udp_reply.flags & TC:
            continue
        transports[i] = ("udp", "tcp") if udp_reply is not None else ("tcp",)
        began = time.perf_counter()
        replies[i], octets[i] = tcp_exchange(query, wires[i], server, max(0.001, deadline - began))
        took[i] += time.perf_counter() - began
    if observer is not None:
        for i, query in enumerate(queries):
            observer(_record(query, wires[i], transports[i], datagrams[i], octets[i], took[i], server, start))
    return [reply for reply in replies if reply is not None]


async def tcp_exchange_async(query: Query, wire: bytes, server: Server, timeout: float) -> tuple[Reply, int]:
    """`tcp_exchange` for asyncio."""
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            writer.write(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise EOFError("the server closed the connection") from None
        finally:
            writer.close()

    try:
        data = await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise dns.exception.Timeout(timeout=timeout) from None
    return _tcp_reply(query, data)


async def _one_async(query: Query, server: Server, timeout: float, retry: float,
                     observer: Observer | None) -> Reply:
    """One query on its own UDP socket: sent again after `retry`, then twice as long each time,
    until `timeout`; TCP after TC, or at once for a query too large for UDP."""
    wire = query.to_wire()
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    start = loop.time()
    deadline = start + timeout
    transports: tuple[str, ...] = ("tcp",)
    datagrams = octets = 0
    reply: Reply | None = None
    if needs_tcp(wire):
        reply, octets = await tcp_exchange_async(query, wire, server, timeout)
    else:
        with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(server)
            wait = retry
            while reply is None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise dns.exception.Timeout(timeout=timeout)
                sock.send(wire)
                datagrams += 1
                resend = loop.time() + min(wait, remaining)
                wait *= 2
                while reply is None and loop.time() < resend:
                    try:
                        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), resend - loop.time())
                    except asyncio.TimeoutError:
                        break
                    reply = _answer(query, data)
                    octets = len(data)
        transports = ("udp",)
        if reply.flags & TC:
            transports = ("udp", "tcp")
            reply, octets = await tcp_exchange_async(query, wire, server, max(0.001, deadline - loop.time()))
    if observer is not None:
        observer(_record(query, wire, transports, datagrams, octets, loop.time() - start, server, began))
    return reply


async def udp_round_async(queries: Sequence[Query], server: Server, timeout: float,
                          retry: float = RETRY, observer: Observer | None = None) -> list[Reply]:
    """`udp_round` for asyncio (each query on its own socket, all at once)."""
    _unique_ids(queries)
    return list(await asyncio.gather(*(_one_async(q, server, timeout, retry, observer) for q in queries)))
