"""The resolver does not rate-limit the clients it serves recursion to (`build.recursion_clients_exempt`):
a fast stub asking a cached answer again and again gets every reply in full over UDP, while the RRL
still limits everyone else (clients outside `--allow-recursion`, networks an operator exempts stay
exempt)."""
from __future__ import annotations

import asyncio
import ipaddress
import socket

import dns.flags
import dns.message
import dns.rcode
from helpers.dnswire import udp_exchange
from resolver_fakes import hierarchy, recursive_server, running

from nameserver.build import recursion_clients_exempt
from nameserver.config import DEFAULT_RRL_RATE, DEFAULT_RRL_WINDOW, LOOPBACK, ServerConfig

ASKS = 3 * int(DEFAULT_RRL_RATE * DEFAULT_RRL_WINDOW)  # three times a fresh bucket's burst


def full_replies(host: str, port: int, source: str) -> int:
    """How many of `ASKS` identical RD queries from `source` got their answer in full over UDP
    (not dropped, not truncated)."""
    query = dns.message.make_query("breach.q.semantic.root.", "SRV", use_edns=0)
    full = 0
    for _ in range(ASKS):
        try:
            reply = dns.message.from_wire(udp_exchange(host, port, query.to_wire(), source=source, timeout=1.0))
        except socket.timeout:
            continue
        if not reply.flags & dns.flags.TC and reply.answer:
            full += 1
    return full


async def test_a_client_the_resolver_serves_is_never_rate_limited() -> None:
    async with running(list(hierarchy().values())) as port, recursive_server(port) as (host, rport):
        full = await asyncio.to_thread(full_replies, host, rport, "127.0.0.1")
    assert full == ASKS  # the RRL's burst is a third of them: limited, most would be dropped or TC


async def test_clients_outside_the_acl_are_still_limited() -> None:
    allow = (ipaddress.ip_network("127.0.0.1/32"),)
    async with running(list(hierarchy().values())) as port, recursive_server(port, allow=allow) as (host, rport):
        served = await asyncio.to_thread(full_replies, host, rport, "127.0.0.1")
        query = dns.message.make_query("breach.q.semantic.root.", "SRV", use_edns=0)
        wire = query.to_wire()

        def refusals() -> int:
            got = 0
            for _ in range(ASKS):
                try:
                    reply = dns.message.from_wire(udp_exchange(host, rport, wire, source="127.0.0.2", timeout=0.3))
                except socket.timeout:
                    continue
                got += reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.TC
            return got

        refused = await asyncio.to_thread(refusals)
    assert served == ASKS
    assert 0 < refused < ASKS  # REFUSED for recursion, and those replies rate limited


def test_exempt_networks_keep_the_operators_and_add_the_acl_once() -> None:
    own = ipaddress.ip_network("192.0.2.0/24")
    config = recursion_clients_exempt(ServerConfig(rrl_exempt=(own, LOOPBACK[0])), LOOPBACK)
    assert config.rrl_exempt == (own, *LOOPBACK)
