"""The reference a fast path is compared with: the chain's response rendered by dnspython."""
from __future__ import annotations

import dns.message

from nameserver import edns
from nameserver.config import Address
from nameserver.request import Request
from nameserver.server import DnsServer

CLIENT: Address = ("127.0.0.1", 5353)


async def dnspython_render(server: DnsServer, wire: bytes, transport: str) -> tuple[bytes, bool]:
    """The reply bytes dnspython renders for `wire`, and whether the chain answered with a `Reply`
    (the fast renderer's input) rather than a message."""
    query = dns.message.from_wire(wire)
    negotiation = edns.negotiate(query, transport, server.config.max_udp)
    request = Request.of(query, wire, CLIENT, transport, negotiation)
    response = await server.chain.serve(request)
    return server.render(response.materialize(request), negotiation), response.reply is not None
