"""The handler chain: a short, fixed sequence of handlers, composed once (CoreDNS plugin style).

A handler is any object with a `name` (one of `ORDER`) and
`async def serve(self, request: Request, next: Next) -> Response`; it answers, or passes the request
to `next`. The order lives here and only here, so a handler written later (UPDATE, semantic
resolution, a recursive resolver) plugs in by name without touching the others:

    chain = build_chain(store, config, extra=[SemanticHandler(...)])

The server runs the chain inline, without a task, until a handler awaits something that is not
ready (then the rest of the query runs as a task). A handler that may need a running task before
its first real suspension (`asyncio.timeout`, `TaskGroup`, `asyncio.current_task()`) gets one
unless it declares `inline = True` ("my serve needs no task until it waits on something"): the
chain first yields once so that the rest runs inside a task. The built-in handlers are inline.

A handler answers an error that is an answer by raising `errors.Refusal` (RCODE, optional EDE,
reason); the chain turns a refusal that leaves any handler into its reply (`Reply.refusing`), so
the handlers before it never see it. When no handler answers, the chain's end refuses: NOTIMP for
an opcode nobody took, REFUSED for a query outside every zone, with EDE 20 (Not Authoritative,
RFC 8914) as NSD sends it.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Iterable, Protocol

import dns.edns
import dns.opcode
import dns.rcode

from nameserver.authority.chaos import ChaosHandler
from nameserver.authority.handler import Authorities, AuthorityHandler
from nameserver.config import ServerConfig
from nameserver.errors import ConfigError, Refusal
from nameserver.request import Next, Reply, Request, Response
from nameserver.transfer.axfr import TransferHandler
from zones.catalog import ZoneStore

NOT_AUTHORITATIVE = Reply.refusing(
    Refusal(dns.rcode.REFUSED, "outside every zone", dns.edns.EDECode.NOT_AUTHORITATIVE))
NOT_IMPLEMENTED = Reply.refusing(Refusal(dns.rcode.NOTIMP, "no handler takes this opcode"))

# The one place that fixes the order of the chain (first to last).
ORDER: tuple[str, ...] = (
    "chaos",  # CHAOS-class TXT version.bind. / id.server. (identification, never zone data)
    "cache",  # a resolver-style RRset cache (the wire cache sits in front of the chain, on bytes)
    "transfer",  # AXFR / IXFR
    "update",  # DNS UPDATE (RFC 2136)
    "semantic",  # semantic resolution: <text>.q.<zone> -> CNAME down the hierarchy
    "authority",  # RFC 1034 answers from our zones
    "recursion",  # referral chasing / recursion for names outside our zones
)


class Handler(Protocol):
    name: str

    async def serve(self, request: Request, next: Next) -> Response: ...


async def fallthrough(request: Request) -> Response:
    """The end of the chain: nobody answered."""
    request.__dict__["handler"] = "none"
    return Response(reply=NOT_AUTHORITATIVE if request.opcode == dns.opcode.QUERY else NOT_IMPLEMENTED)


class Chain:
    """Handlers in `ORDER`, composed once into a single callable."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        ordered = sorted(handlers, key=_position)
        names = [h.name for h in ordered]
        if len(set(names)) != len(names):
            raise ConfigError(f"chain: two handlers share a slot: {names}")
        self.handlers: tuple[Handler, ...] = tuple(ordered)
        entry: Next = fallthrough
        for handler in reversed(self.handlers):
            entry = _bind(handler, entry)
        self._entry = entry

    async def serve(self, request: Request) -> Response:
        """The response of the first handler that answers; a `Refusal` raised on the way is
        answered here."""
        try:
            return await self._entry(request)
        except Refusal as refusal:
            return Response(reply=Reply.refusing(refusal))

    def warm(self) -> None:
        """Let handlers prepare for the current catalog (indexes, rendered transfers) up front."""
        for handler in self.handlers:
            warm = getattr(handler, "warm", None)
            if warm is not None:
                warm()

    def get(self, name: str) -> Handler | None:
        return next((h for h in self.handlers if h.name == name), None)


def _position(handler: Handler) -> int:
    try:
        return ORDER.index(handler.name)
    except ValueError:
        raise ConfigError(f"chain: unknown handler slot {handler.name!r}; known: {ORDER}") from None


def _bind(handler: Handler, after: Next) -> Next:
    """`handler` with `after` as its next; it notes its name in the request on the way in, so the
    last name noted is the handler that answered (`answered_by`: metrics and the query log)."""
    serve, name = handler.serve, handler.name
    if getattr(handler, "inline", False) or isinstance(handler, TransferHandler):  # transfers never wait
        def call(request: Request) -> Awaitable[Response]:
            request.__dict__["handler"] = name
            return serve(request, after)

        return call

    async def in_task(request: Request) -> Response:
        request.__dict__["handler"] = name
        if asyncio.current_task() is None:
            await asyncio.sleep(0)  # suspend: the server carries on in a task
        return await serve(request, after)

    return in_task


def answered_by(request: Request) -> str:
    """The slot of the handler that answered `request` (`none`: the chain's end refused it)."""
    return request.__dict__.get("handler", "none")


def build_chain(store: ZoneStore, config: ServerConfig, extra: Iterable[Handler] = ()) -> Chain:
    """The standard chain (chaos, transfer, authority) plus `extra` handlers, each in its slot."""
    authorities = Authorities(store)
    standard: list[Handler] = [
        ChaosHandler(config), TransferHandler(store, config, authorities), AuthorityHandler(store, authorities),
    ]
    return Chain([*standard, *extra])
