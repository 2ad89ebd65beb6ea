"""The server core, with no I/O: bytes and a client address in, the bytes to send back out.

    wire -> wire cache hit? -> parse (errors.parse_query) -> EDNS negotiation -> chain
         -> render (EDNS applied, TC when too big for UDP) -> wire cache

The transports (`udp.py`, `tcp.py`) only move bytes: they call `cached()` synchronously first (no
task, no parsing on a hit) and `handle()` on a miss.
"""
from __future__ import annotations

import logging

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from nameserver import edns
from nameserver.chain import Chain
from nameserver.config import Address, ServerConfig
from nameserver.errors import Rejected, parse_query
from nameserver.request import Request, Response, Transport
from nameserver.wirecache import WireCache
from zones.catalog import ZoneStore

log = logging.getLogger(__name__)


class DnsServer:
    """Answers one message at a time; shared by every listener of a runner."""

    def __init__(self, store: ZoneStore, chain: Chain, config: ServerConfig) -> None:
        self.store = store
        self.chain = chain
        self.config = config
        self.wirecache = WireCache(config.wire_cache_entries) if config.wire_cache else None

    def cached(self, wire: bytes, transport: Transport) -> bytes | None:
        """The answer from the wire cache, or None (then call `handle`)."""
        cache = self.wirecache
        if cache is None:
            return None
        return cache.lookup(wire, transport, self.store.current)

    async def handle(self, wire: bytes, client: Address, transport: Transport) -> tuple[bytes, ...]:
        """The messages to send back (none: drop the packet)."""
        catalog = self.store.current
        try:
            query = parse_query(wire)
        except Rejected as rejected:
            log.debug("%s %s: %s", transport, client[0], rejected.reason)
            return (rejected.reply,) if rejected.reply is not None else ()
        negotiation = edns.negotiate(query, transport, self.config.max_udp)
        request = Request(message=query, wire=wire, client=client, transport=transport, edns=negotiation)
        if negotiation.bad_version:
            return (self.render(request.reply(dns.rcode.BADVERS), negotiation),)
        try:
            response = await self.chain.serve(request)
        except Exception:
            log.exception("handler failed on %s %s from %s", request.qname, request.qtype, client[0])
            response = Response(message=request.reply(dns.rcode.SERVFAIL))
        if response.wires:
            return response.wires
        if response.message is None:
            return ()
        answer = self.render(response.message, negotiation)
        if response.cacheable and self.wirecache is not None:
            self.wirecache.store(wire, transport, answer, catalog)
        return (answer,)

    def render(self, reply: dns.message.Message, negotiation: edns.Negotiation) -> bytes:
        """Wire format within the negotiated size; TC=1 with the question only if it won't fit.

        RRsets go out in zone order (no shuffling, like NSD's default), so answers are
        reproducible and a cached answer is the answer.
        """
        edns.apply(reply, negotiation, self.config.max_udp)
        try:
            return reply.to_wire(max_size=negotiation.max_size, want_shuffle=False)
        except dns.exception.TooBig:
            reply.answer = []
            reply.authority = []
            reply.additional = []
            reply.flags |= dns.flags.TC
            return reply.to_wire(max_size=negotiation.max_size, want_shuffle=False)
