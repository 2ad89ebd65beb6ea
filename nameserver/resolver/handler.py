"""The chain handler of `semdns serve --recursive`: slot "recursion" (see `nameserver/chain.py`).

It answers queries with RD set that no earlier handler answered (names outside our own zones) by
iterative resolution from the root hints; queries without RD pass on (and end REFUSED). Only
clients in the allow-recursion ACL (`allow`, default loopback: `semdns serve --allow-recursion`)
are served; the others get REFUSED with EDE 18 (Prohibited), while authoritative answers, which
earlier handlers give, stay theirs. Answers carry RA, never AA, remaining TTLs, and on failure
SERVFAIL with an Extended DNS Error. The client's EDNS text option (65001) is forwarded to the
authoritative servers, its embedding (65002) never (`ResolverConfig.forward_options`).

Caching rendered answers: when the recursor's RRset cache counts in whole seconds (its clock is
`whole_seconds`, as `nameserver.build.RecursionOptions` sets up), every TTL in an answer drops by one exactly when
the clock's second changes, all together. So with `cache_answers=True` NOERROR/NXDOMAIN answers go
to the server's wire cache with the second their TTLs were read at (`Response.ttl_epoch`): a hit
gets every TTL lowered by the seconds since, which is what the RRset cache would answer, until the
smallest TTL runs out (`Response.expires`). An answer whose resolution crossed a second boundary
(TTLs read at different seconds) is not kept, nor one built from the client's own semantic-cache
entries (`Resolution.private`). The wire cache sits before the ACL: `DnsServer.recursion_clients`
keeps RD queries from other clients away from it (`nameserver.build` sets it to `allows`).

`nameserver.build.build_server` wires it (`RecursionOptions`: root hints, timeouts, cache size).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import dns.edns
import dns.flags
import dns.opcode
import dns.rcode
import dns.rdataclass

from nameserver.config import LOOPBACK, IPNetwork, address_in
from nameserver.errors import Refusal
from nameserver.request import Next, Request, Response
from nameserver.resolver.recursor import Recursor, fill

CACHED_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN})


def whole_seconds() -> float:
    """`time.monotonic()` rounded down to the second: the RRset cache clock that makes TTLs tick
    together, once a second (like Unbound's and BIND's integer clocks)."""
    return float(math.floor(time.monotonic()))


class RecursionHandler:
    name = "recursion"

    def __init__(self, recursor: Recursor, *, cache_answers: bool = False,
                 clock: Callable[[], float] = time.monotonic, allow: tuple[IPNetwork, ...] = LOOPBACK) -> None:
        """`cache_answers` only when `recursor.cache` runs on the `whole_seconds` clock; `clock`
        is the unrounded clock behind it (the wire cache's); `allow` the networks served."""
        self.recursor = recursor
        self.cache_answers = cache_answers
        self.clock = clock
        self.allow = allow

    def allows(self, host: str) -> bool:
        """True when the client at `host` may have its queries resolved."""
        return address_in(host, self.allow)

    async def serve(self, request: Request, next: Next) -> Response:
        query = request.message
        if (
            request.opcode != dns.opcode.QUERY
            or not query.flags & dns.flags.RD
            or request.qclass != dns.rdataclass.IN
        ):
            return await next(request)
        host = request.client[0]
        if not self.allows(host):
            raise Refusal(dns.rcode.REFUSED, f"recursion not allowed for {host}", dns.edns.EDECode.PROHIBITED,
                          "recursion not allowed")
        second = math.floor(self.clock())
        result = await self.recursor.resolve(request.qname, request.qtype, tuple(query.options), client=host)
        reply = request.reply()
        reply.flags |= dns.flags.RA
        fill(reply, result, request.edns.present)
        if (not self.cache_answers or result.rcode not in CACHED_RCODES or result.private
                or math.floor(self.clock()) != second):
            return Response(message=reply)
        lifetime = min((r.ttl for r in (*result.answer, *result.authority, *result.additional)), default=1)
        return Response(message=reply, cacheable=lifetime > 0, expires=float(second + lifetime), ttl_epoch=second)
