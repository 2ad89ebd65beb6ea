"""The server core, with no I/O: bytes and a client address in, the bytes to send back out.

    wire -> wire cache hit? -> read (wire.PlainQuery.from_wire, else wire.query_from_wire) -> EDNS
         -> chain -> render (EDNS applied, TC when too big for UDP) -> wire cache

The transports (`udp.py`, `tcp.py`) only move bytes: they call `respond()` (for UDP, the C of
`_hotpath.c` answers wire cache hits itself while `fast_cache()` lets it), which answers a wire
cache hit at once and runs the chain inline (no task per query) for as long as it does not
suspend: it returns the replies, or an awaitable for the rest when a handler had to wait.
Every query answered (or dropped) is told to `metrics` (`nameserver/metrics.py`) and `query_log`
(`nameserver/querylog.py`) when they are set: the handler that answered, its routing steps, the
seconds from the bytes to the replies.
Replies given as a `Reply` (the authority and semantic handlers') are rendered from pre-rendered RRsets
(`nameserver/render.py`); replies given as a `dns.message.Message` by dnspython.
"""
from __future__ import annotations

from time import perf_counter
from typing import Any, Awaitable, Callable, Coroutine, Generator

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from nameserver import edns
from nameserver.chain import Chain, answered_by
from nameserver.config import Address, ServerConfig
from nameserver.errors import Rejected
from nameserver.logs import HandlerFailures, packet_log
from nameserver.metrics import ServerMetrics, qtype_of
from nameserver.querylog import QueryLog
from nameserver.render import PieceCache, render_reply
from nameserver.request import Request, Response, Transport
from nameserver.rrl import RateLimiter
from nameserver.wire import PlainQuery, copyable_question, error_reply, query_from_wire
from nameserver.wirecache import WireCache
from zones.catalog import ZoneStore

packets = packet_log(__name__)  # lines a client's packet can cause: rate-limited, no question text
Replies = tuple[bytes, ...]
RD_OCTET = 0x01  # RD in the header's third octet


class DnsServer:
    """Answers one message at a time; shared by every listener of a runner."""

    def __init__(self, store: ZoneStore, chain: Chain, config: ServerConfig) -> None:
        self.store = store
        self.chain = chain
        self.config = config
        self.wirecache = WireCache(
            config.wire_cache_entries, max_bytes=config.wire_cache_bytes, max_udp=config.max_udp,
        ) if config.wire_cache else None
        self.pieces = PieceCache()
        # with recursion on: the clients whose RD queries the wire cache may answer (it holds
        # recursive answers, which the others are refused); None: every client's
        self.recursion_clients: Callable[[str], bool] | None = None
        self.rrl = RateLimiter.from_config(config)  # applied by udp.py to every reply it sends
        self.failures = HandlerFailures(packets, config.log_questions)
        self.metrics: ServerMetrics | None = None
        self.query_log: QueryLog | None = None
        self.observing = False  # metrics or query_log set: `observe` them (`build.build_server` does)

    def observe(self, metrics: ServerMetrics | None = None, query_log: QueryLog | None = None) -> None:
        """Tell `metrics` and `query_log` of every query from now on."""
        self.metrics, self.query_log = metrics, query_log
        self.observing = metrics is not None or query_log is not None

    def fast_cache(self) -> tuple[Any, ...] | None:
        """The wire cache as `nameserver._hotpath.serve` answers UDP hits from it in C, or None
        when every reply must pass through here (no wire cache, or rate limiting, metrics, a query
        log or a recursion ACL must see each one)."""
        cache = self.wirecache
        if cache is None or self.rrl is not None or self.observing or self.recursion_clients is not None:
            return None
        return cache.fast(self.store)

    def cached(self, wire: bytes, transport: Transport) -> bytes | None:
        """The answer from the wire cache, or None (then call `handle`)."""
        cache = self.wirecache
        if cache is None:
            return None
        return cache.lookup(wire, transport, self.store.current)

    def respond(self, wire: bytes, client: Address, transport: Transport) -> Replies | Awaitable[Replies]:
        """The replies, when they could be computed without waiting; else an awaitable for them."""
        started = perf_counter() if self.observing else 0.0
        allowed = self.recursion_clients
        admitted = allowed is None or not wire[2:3] or not wire[2] & RD_OCTET or allowed(client[0])
        hit = self.cached(wire, transport) if admitted else None
        if hit is not None:
            if started:
                self._hit(wire, hit, client, transport, started)
            return (hit,)
        coro = self.handle(wire, client, transport)
        try:
            pending = coro.send(None)
        except StopIteration as done:
            return done.value
        return _Resumed(coro, pending)

    async def handle(self, wire: bytes, client: Address, transport: Transport) -> Replies:
        """The messages to send back (none: drop the packet)."""
        started = perf_counter() if self.observing else 0.0
        catalog = self.store.current
        max_udp = self.config.max_udp
        plain = PlainQuery.from_wire(wire)
        if plain is not None:
            negotiation = edns.negotiate_plain(plain.edns, plain.payload, plain.ttl, transport, max_udp)
            request = Request.plain(wire, client, transport, negotiation, plain.qtype, plain.qclass, plain.flags,
                                    plain.qname_end, plain.options)
        else:
            try:
                query = query_from_wire(wire)
            except Rejected as rejected:
                packets.debug("%s %s: %s", transport, client[0], rejected.reason)
                replies = (error_reply(wire, rejected.refusal.rcode),) if rejected.refusal is not None else ()
                return self._observed(wire, replies, client, transport, None, "rejected", started)
            negotiation = edns.negotiate(query, transport, max_udp)
            request = Request.of(query, wire, client, transport, negotiation)
        if negotiation.bad_version:
            replies = (self.render(request.reply(dns.rcode.BADVERS), negotiation),)
            return self._observed(wire, replies, client, transport, request, "edns", started)
        try:
            response = await self.chain.serve(request)
        except Exception as exc:
            self.failures.report(exc, request.qname, request.qtype, client[0])
            response = Response(message=request.reply(dns.rcode.SERVFAIL))
        if response.wires:
            return self._observed(wire, response.wires, client, transport, request, answered_by(request), started)
        reply = response.reply
        question = None
        if reply is not None and response.message is None:
            question = (plain.qname_end, plain.flags) if plain is not None else copyable_question(wire)
        if reply is not None and question is not None and 0 <= reply.rcode <= 15:
            pieces = self.pieces
            pieces.belong_to(catalog)
            qname_end, flags = question
            answer = render_reply(wire, qname_end, flags, reply, negotiation, max_udp, pieces)
        else:
            message = response.materialize(request)
            if message is None:
                return self._observed(wire, (), client, transport, request, answered_by(request), started)
            answer = self.render(message, negotiation)
        if response.cacheable and self.wirecache is not None:
            self.wirecache.store(wire, transport, answer, catalog, response.expires, response.ttl_epoch)
        return self._observed(wire, (answer,), client, transport, request, answered_by(request), started)

    def _hit(self, wire: bytes, hit: bytes, client: Address, transport: Transport, started: float) -> None:
        """`_observed` for a wire cache hit, the hottest path: a plain query, whose QNAME ends where
        the cache found it (its QTYPE follows)."""
        seconds = perf_counter() - started
        metrics = self.metrics
        if metrics is not None:
            end = self.wirecache.hit_end  # type: ignore[union-attr]
            metrics.hit(transport, hit, wire[end] << 8 | wire[end + 1], seconds)
        if self.query_log is not None:
            self.query_log.answered(wire, (hit,), client, transport, "wirecache", (), seconds)

    def _observed(self, wire: bytes, replies: Replies, client: Address, transport: Transport,
                  request: Request | None, handler: str, started: float) -> Replies:
        """`replies`, once told to the metrics and the query log (when `started`: observing)."""
        if not started:
            return replies
        seconds = perf_counter() - started
        reply = replies[0] if replies else None
        hops = request.__dict__.get("hops", ()) if request is not None else ()
        metrics = self.metrics
        if metrics is not None:
            qtype: int = request.qtype if request is not None else qtype_of(wire)
            metrics.answered(transport, reply, qtype, handler, seconds, hops)
        query_log = self.query_log
        if query_log is not None:
            query_log.answered(wire, replies, client, transport, handler, hops, seconds)
        return replies

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


class _Resumed:
    """Awaitable continuation of a coroutine that suspended after being started by hand."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Replies], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Replies]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation and the like go to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return done.value

