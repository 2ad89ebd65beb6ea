"""The chain handler of `semdns serve --recursive`: slot "recursion" (see `nameserver/chain.py`).

It answers queries with RD set that no earlier handler answered (names outside our own zones) by
iterative resolution from the root hints; queries without RD pass on (and end REFUSED). Answers
carry RA, never AA, remaining TTLs, and on failure SERVFAIL with an Extended DNS Error. The client's
EDNS text (65001) and embedding (65002) options are forwarded to the authoritative servers.

Caching rendered answers: when the recursor's RRset cache counts in whole seconds (its clock is
`whole_seconds`, as `handler_from_args` sets up), every TTL in an answer drops by one exactly when
the clock's second changes, all together. So with `cache_answers=True` NOERROR/NXDOMAIN answers go
to the server's wire cache with the second their TTLs were read at (`Response.ttl_epoch`): a hit
gets every TTL lowered by the seconds since, which is what the RRset cache would answer, until the
smallest TTL runs out (`Response.expires`). An answer whose resolution crossed a second boundary
(TTLs read at different seconds) is not kept.

Wiring, in `tools/cmd_serve.py`::

    from nameserver.resolver.handler import add_arguments, handler_from_args
    add_arguments(parser)                      # --recursive --root-hints --upstream-port ...
    extra = [handler_from_args(args)] if args.recursive else []
    chain = build_chain(store, config, extra=extra)
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import dns.flags
import dns.opcode
import dns.rcode
import dns.rdataclass

from nameserver.request import Next, Request, Response
from nameserver.resolver.hints import Hints
from nameserver.resolver.iterator import ResolverConfig
from nameserver.resolver.recursor import Recursor, fill
from nameserver.resolver.rrcache import RRsetCache

CACHED_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN})


def whole_seconds() -> float:
    """`time.monotonic()` rounded down to the second: the RRset cache clock that makes TTLs tick
    together, once a second (like Unbound's and BIND's integer clocks)."""
    return float(math.floor(time.monotonic()))


class RecursionHandler:
    name = "recursion"

    def __init__(self, recursor: Recursor, *, cache_answers: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`cache_answers` only when `recursor.cache` runs on the `whole_seconds` clock; `clock`
        is the unrounded clock behind it (the wire cache's)."""
        self.recursor = recursor
        self.cache_answers = cache_answers
        self.clock = clock

    async def serve(self, request: Request, next: Next) -> Response:
        query = request.message
        if (
            request.opcode != dns.opcode.QUERY
            or not query.flags & dns.flags.RD
            or request.qclass != dns.rdataclass.IN
        ):
            return await next(request)
        second = math.floor(self.clock())
        result = await self.recursor.resolve(request.qname, request.qtype, tuple(query.options))
        reply = request.reply()
        reply.flags |= dns.flags.RA
        fill(reply, result, request.edns.present)
        if not self.cache_answers or result.rcode not in CACHED_RCODES or math.floor(self.clock()) != second:
            return Response(message=reply)
        lifetime = min((r.ttl for r in (*result.answer, *result.authority, *result.additional)), default=1)
        return Response(message=reply, cacheable=lifetime > 0, expires=float(second + lifetime), ttl_epoch=second)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of recursive mode, for `semdns serve`."""
    group = parser.add_argument_group("recursive mode")
    group.add_argument("--recursive", action="store_true", help="resolve iteratively from --root-hints")
    group.add_argument("--root-hints", metavar="FILE", help="NS + A records of the resolution root")
    group.add_argument("--upstream-port", type=int, default=53, metavar="PORT",
                       help="port of the authoritative servers (default 53; the cluster uses its own)")
    group.add_argument("--cache-size", type=int, default=100_000, metavar="N", help="RRsets kept (LRU)")
    group.add_argument("--query-timeout", type=float, default=0.8, metavar="S", help="per query to one server")
    group.add_argument("--resolve-timeout", type=float, default=4.0, metavar="S", help="per whole resolution")


def handler_from_args(args: argparse.Namespace) -> RecursionHandler:
    """Build the handler from `add_arguments`' flags (raises HintsError for a bad hints file)."""
    if not args.root_hints:
        raise SystemExit("semdns serve --recursive needs --root-hints FILE (NS + A records of the root)")
    config = ResolverConfig(
        port=args.upstream_port, query_timeout=args.query_timeout, total_timeout=args.resolve_timeout
    )
    cache = RRsetCache(args.cache_size, clock=whole_seconds)
    recursor = Recursor(Hints.from_file(args.root_hints), config=config, cache=cache)
    return RecursionHandler(recursor, cache_answers=True)
