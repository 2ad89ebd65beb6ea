"""Tiny fake authoritative servers for the resolver tests (asyncio UDP + TCP, dnspython zones).

Each `FakeServer` answers from one dnspython zone like a plain authoritative server (answers,
CNAMEs inside the zone, referrals with glue, NXDOMAIN/NODATA with the SOA), unless a `behave`
hook overrides it: the hook gets the query and the honest reply and returns the reply to send,
`None` for silence, or `TRUNCATE` to send an empty reply with TC set over UDP.
"""
from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from typing import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone

from nameserver.build import RecursionOptions, ServerOptions, build_server
from nameserver.config import LOOPBACK, IPNetwork, ServerConfig
from nameserver.resolver import Hints, Recursor, ResolverConfig
from tools.cmd_cluster import free_port_on

TRUNCATE = "truncate"
Behave = Callable[[dns.message.Message, dns.message.Message, str], object]


def zone(origin: str, body: str) -> dns.zone.Zone:
    return dns.zone.from_text(body, origin=origin, relativize=False, check_origin=True)


def authoritative(z: dns.zone.Zone, query: dns.message.Message) -> dns.message.Message:
    """What an honest authoritative server for `z` answers."""
    q = query.question[0]
    reply = dns.message.make_response(query)
    reply.flags &= ~dns.flags.RA
    origin = z.origin
    name = q.name
    if not name.is_subdomain(origin):
        reply.set_rcode(dns.rcode.REFUSED)
        return reply
    soa = z.find_rrset(origin, dns.rdatatype.SOA)
    seen = set()
    while name not in seen:
        seen.add(name)
        for depth in range(len(origin) + 1, len(name) + 1):
            cut = name.split(depth)[1]
            ns = z.get_rrset(cut, dns.rdatatype.NS)
            if ns is not None:
                reply.authority.append(ns)
                for rd in ns:
                    glue = z.get_rrset(rd.target, dns.rdatatype.A)
                    if glue is not None:
                        reply.additional.append(glue)
                if not reply.answer:
                    reply.flags &= ~dns.flags.AA
                return reply
        reply.flags |= dns.flags.AA
        node = z.get_node(name)
        if node is None:
            below = any(n.is_subdomain(name) for n in z.nodes)
            if not below:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.authority.append(soa)
            return reply
        rrset = z.get_rrset(name, q.rdtype)
        if rrset is not None:
            reply.answer.append(rrset)
            if q.rdtype == dns.rdatatype.SRV:
                for rd in rrset:
                    a = z.get_rrset(rd.target, dns.rdatatype.A)
                    if a is not None:
                        reply.additional.append(a)
            return reply
        cname = z.get_rrset(name, dns.rdatatype.CNAME)
        if cname is None:
            reply.authority.append(soa)
            return reply
        reply.answer.append(cname)
        name = cname[0].target
        if not name.is_subdomain(origin):
            return reply
    return reply


@dataclass
class FakeServer:
    address: str
    zone: dns.zone.Zone
    behave: Behave | None = None
    tcp_enabled: bool = True
    received: list[dns.message.Message] = field(default_factory=list)

    def handle(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        self.received.append(query)
        reply = authoritative(self.zone, query)
        if self.behave is not None:
            reply = self.behave(query, reply, transport)
        if reply is None:
            return None
        if reply == TRUNCATE:
            if transport == "tcp":
                raise AssertionError("TRUNCATE is for UDP only")
            empty = dns.message.make_response(query)
            empty.flags |= dns.flags.TC | dns.flags.AA
            return empty.to_wire()
        return reply.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        out = self.server.handle(data, "udp")
        if out is not None:
            self.transport.sendto(out, addr)


async def _tcp_client(server: FakeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            out = server.handle(await reader.readexactly(size), "tcp")
            if out is None:
                continue
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def free_port(addresses: list[str]) -> int:
    """A port free on every address for UDP and TCP (probed; the servers bind it right after)."""
    return free_port_on(addresses)


@contextlib.asynccontextmanager
async def running(servers: list[FakeServer]):
    """Start every server on its address, all on one free port; yield the port; stop them all."""
    loop = asyncio.get_running_loop()
    port = free_port([s.address for s in servers])
    transports = []
    tcp_servers = []
    try:
        for server in servers:
            transport, _ = await loop.create_datagram_endpoint(
                lambda server=server: _Udp(server), local_addr=(server.address, port)
            )
            transports.append(transport)
            if server.tcp_enabled:
                tcp_servers.append(
                    await asyncio.start_server(
                        lambda r, w, server=server: _tcp_client(server, r, w), server.address, port
                    )
                )
        yield port
    finally:
        for transport in transports:
            transport.close()
        for tcp in tcp_servers:
            tcp.close()
            await tcp.wait_closed()


# -- a three-level hierarchy used by most tests -------------------------------------------------

SOA = "@ 3600 IN SOA ns1 hostmaster 1 3600 900 1209600 300\n"


def hierarchy_zones() -> dict[str, dns.zone.Zone]:
    """semantic.root. (127.0.0.1) -> legal (127.0.0.2) -> contract.legal (127.0.0.3); medical (127.0.0.4)."""
    root = zone("semantic.root.", (
        "$ORIGIN semantic.root.\n" + SOA +
        "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
        "legal 3600 IN NS ns1.legal\nns1.legal 3600 IN A 127.0.0.2\n"
        "medical 3600 IN NS ns1.medical\nns1.medical 3600 IN A 127.0.0.4\n"
        "breach.q 300 IN CNAME breach.q.legal\n"
        "fever.q 300 IN CNAME fever.q.medical\n"
        "_llm._tcp 300 IN SRV 10 10 8100 llm1\nllm1 300 IN A 127.0.0.1\n"
    ))
    legal = zone("legal.semantic.root.", (
        "$ORIGIN legal.semantic.root.\n" + SOA +
        "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.2\n"
        "contract 3600 IN NS ns1.contract\nns1.contract 3600 IN A 127.0.0.3\n"
        "breach.q 300 IN CNAME breach.q.contract\n"
        "_llm._tcp 300 IN SRV 10 10 8110 llm1\nllm1 300 IN A 127.0.0.1\n"
    ))
    contract = zone("contract.legal.semantic.root.", (
        "$ORIGIN contract.legal.semantic.root.\n" + SOA +
        "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.3\n"
        "breach.q 300 IN CNAME _llm._tcp\n"
        "_llm._tcp 300 IN SRV 10 10 8111 llm1\n"
        "_llm._tcp 300 IN TXT \"txtvers=1\" \"model=smollm2-135m-instruct\"\n"
        "llm1 300 IN A 127.0.0.1\n"
    ))
    medical = zone("medical.semantic.root.", (
        "$ORIGIN medical.semantic.root.\n" + SOA +
        "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.4\n"
        "fever.q 300 IN CNAME _llm._tcp\n"
        "_llm._tcp 300 IN SRV 10 10 8120 llm1\nllm1 300 IN A 127.0.0.1\n"
    ))
    return {"root": root, "legal": legal, "contract": contract, "medical": medical}


ADDRESSES = {"root": "127.0.0.1", "legal": "127.0.0.2", "contract": "127.0.0.3", "medical": "127.0.0.4"}


def hierarchy(**behaviours: Behave) -> dict[str, FakeServer]:
    zones = hierarchy_zones()
    return {key: FakeServer(ADDRESSES[key], zones[key], behaviours.get(key)) for key in zones}


@contextlib.asynccontextmanager
async def recursive_server(port: int, allow: tuple[IPNetwork, ...] = LOOPBACK):
    """A real ServerRunner on 127.0.0.10 (free port) whose chain recurses from 127.0.0.1:`port`
    for the clients in `allow`."""
    recursor = Recursor(
        Hints.single("semantic.root.", "127.0.0.1"),
        config=ResolverConfig(port=port, query_timeout=0.2, total_timeout=1.5),
    )
    options = ServerOptions(config=ServerConfig(listen=(("127.0.0.10", 0),), uvloop=False), semantic=None,
                            recursion=RecursionOptions(cache_answers=False, allow_recursion=allow))
    runner = build_server(options, recursor=recursor)
    await runner.start()
    try:
        yield runner.addresses[0]
    finally:
        await runner.stop()
