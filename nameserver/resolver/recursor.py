"""The recursive resolver: drives `Iteration` over a transport and answers stub clients.

`Recursor.resolve(qname, rdtype, options)` runs one iterative resolution under a total deadline;
`Recursor.respond(query)` turns a stub's query message into the response message (RD copied, RA
set, AA clear, an Extended DNS Error on failure). Concurrent resolutions share the cache and do not
block one another: a server that stops answering costs its own queries their timeouts, nobody else.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Generator

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from common.steps import drive_async
from nameserver.resolver.hints import Hints
from nameserver.resolver.iterator import EDE, Event, Iteration, Query, Resolution, ResolverConfig
from nameserver.resolver.routecache import RouteCache
from nameserver.resolver.rrcache import RRsetCache
from nameserver.resolver.transport import DnsTransport, Transport


class Recursor:
    """Iterative resolution from `hints`, with a shared RRset cache."""

    def __init__(
        self,
        hints: Hints,
        *,
        config: ResolverConfig | None = None,
        cache: RRsetCache | None = None,
        transport: Transport | None = None,
        routes: RouteCache | None = None,
    ) -> None:
        self.hints = hints
        self.routes = routes
        self.semantic_hits = 0
        self.config = config or ResolverConfig()
        self.cache = cache if cache is not None else RRsetCache()
        self.transport = transport or DnsTransport(self.config.query_timeout)

    async def resolve(
        self,
        qname: dns.name.Name,
        rdtype: int,
        options: tuple[dns.edns.Option, ...] = (),
        *,
        transport: Transport | None = None,
        client: str = "",
    ) -> Resolution:
        """Resolve (qname, rdtype); never raises for DNS faults (they come back as SERVFAIL + EDE).

        Of the client's `options` only those in `config.forward_options` go upstream (the text,
        never the client's embedding). `client` (its address) scopes the semantic cache: a
        shortcut reuses only routes this same client learned (`routecache`).

        The RRset cache answers first: a question it answers whole (CNAME chain included) costs
        no query, no semantic parse and no embedding. Otherwise, with a route cache, a semantic
        question close to a cached one is answered by a synthesised CNAME to the cached route, and
        only the route is resolved. The cache's statistics count the lookups of the first walk
        over the cache only (a resolution restarted after it does not count them again).
        """
        options = tuple(o for o in options if o.otype in self.config.forward_options)
        iteration = Iteration(self.cache, self.hints, self.config, options)
        steps = iteration.run(qname, rdtype)
        try:
            first = next(steps)
        except StopIteration as stop:
            return stop.value
        question = await self.routes.question(qname, rdtype, options, client) if self.routes is not None else None
        if question is None:
            return await self._drive(qname, iteration, steps, first, transport)
        assert self.routes is not None
        steps.close()  # its first query lacks the embedding the semantic path may add
        extra = self.routes.option_for(question)
        if extra is not None:
            options = (*options, extra)
        shortcut = self.routes.shortcut(qname, question)
        if shortcut is not None:
            result = await self._iterate(shortcut.route, rdtype, options, transport)
            if result.rcode == dns.rcode.NOERROR and result.answer:
                self.semantic_hits += 1
                return replace(result, answer=(shortcut.cname, *result.answer), private=True)
        result = await self._iterate(qname, rdtype, options, transport)
        if result.rcode == dns.rcode.NOERROR and result.queries:
            self.routes.learn(question, result)
        return result

    async def _iterate(
        self, qname: dns.name.Name, rdtype: int, options: tuple[dns.edns.Option, ...], transport: Transport | None
    ) -> Resolution:
        """A resolution after the first walk over the cache (its lookups are not counted again)."""
        iteration = Iteration(self.cache, self.hints, self.config, options, count=False)
        steps = iteration.run(qname, rdtype)
        try:
            first = next(steps)
        except StopIteration as stop:
            return stop.value
        return await self._drive(qname, iteration, steps, first, transport)

    async def _drive(
        self, qname: dns.name.Name, iteration: Iteration, steps: Generator[Query, Event, Resolution],
        action: Query, transport: Transport | None,
    ) -> Resolution:
        """Run a started iteration over the transport (its first query is `action`) to its end."""
        transport = transport or self.transport
        try:
            async with asyncio.timeout(self.config.total_timeout):
                return await drive_async(steps, transport.exchange, started=(action,))
        except TimeoutError:
            steps.close()
            text = f"resolving {qname} took longer than {self.config.total_timeout:g} s"
            return Resolution(
                dns.rcode.SERVFAIL, ede=dns.edns.EDEOption(EDE.NO_REACHABLE_AUTHORITY, text),
                queries=iteration.queries,
            )

    async def respond(self, query: dns.message.Message) -> dns.message.Message:
        """The full response to a stub client's query (the text option forwarded, EDE on failure)."""
        response = dns.message.make_response(query)
        response.flags = dns.flags.QR | dns.flags.RA | (query.flags & (dns.flags.RD | dns.flags.CD))
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1 or query.question[0].rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.FORMERR if len(query.question) != 1 else dns.rcode.REFUSED)
            return response
        question = query.question[0]
        result = await self.resolve(question.name, question.rdtype, tuple(query.options))
        fill(response, result, query.edns >= 0)
        return response


def fill(response: dns.message.Message, result: Resolution, edns: bool) -> None:
    """Copy a `Resolution` into `response` (options and EDE only when the client speaks EDNS)."""
    response.answer = list(result.answer)
    response.authority = list(result.authority)
    response.additional = list(result.additional)
    rcode = dns.rcode.Rcode.make(result.rcode)
    response.set_rcode(rcode)
    if edns:
        options = [*result.options, *([result.ede] if result.ede is not None else [])]
        response.use_edns(0, 0, 1232, options=options)
        response.set_rcode(rcode)
