"""The server runs the chain inline until a handler has to wait: no task for answers that are ready,
a task for the rest, and a task from the start for handlers that did not declare `inline`."""
from __future__ import annotations

import asyncio

import dns.message
import dns.name
import dns.rcode
import dns.zone
from helpers.testzones import parent_zone

from nameserver.chain import build_chain
from nameserver.config import ServerConfig
from nameserver.request import Next, Request, Response
from nameserver.server import DnsServer
from zones.catalog import ZoneCatalog, ZoneStore

CLIENT = ("127.0.0.1", 5353)


def make_server(*extra, wire_cache: bool = False) -> DnsServer:
    zone = dns.zone.from_text(parent_zone(), relativize=False)
    store = ZoneStore(ZoneCatalog(zones={dns.name.from_text("sem.test."): zone}))
    config = ServerConfig(wire_cache=wire_cache)
    return DnsServer(store, build_chain(store, config, extra), config)


class NeedsTask:
    """Not inline: uses asyncio.timeout, which fails outside a task."""

    name = "semantic"

    def __init__(self) -> None:
        self.in_task: list[bool] = []

    async def serve(self, request: Request, next: Next) -> Response:
        self.in_task.append(asyncio.current_task() is not None)
        async with asyncio.timeout(5):
            return await next(request)


class Waits:
    """Inline, but waits for a moment on names starting with `slow`; notes cancellation."""

    name = "semantic"
    inline = True

    def __init__(self) -> None:
        self.cancelled = False

    async def serve(self, request: Request, next: Next) -> Response:
        if request.qname.labels[0] != b"slow":
            return await next(request)
        try:
            await asyncio.sleep(0.01 if request.qname.labels[1] == b"short" else 60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return Response(message=request.reply(dns.rcode.NXDOMAIN))


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def test_ready_answers_need_no_loop_at_all() -> None:
    server = make_server()
    replies = server.respond(query("www.sem.test."), CLIENT, "udp")
    assert type(replies) is tuple
    assert dns.message.from_wire(replies[0]).answer[0].to_text() == "www.sem.test. 3600 IN A 192.0.2.1"


async def _respond_from_callback(server: DnsServer, wire: bytes):
    """What the UDP protocol sees: `respond` called from a loop callback, outside any task."""
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    loop.call_soon(lambda: got.set_result(server.respond(wire, CLIENT, "udp")))
    return await got


async def test_a_handler_without_inline_runs_in_a_task() -> None:
    handler = NeedsTask()
    server = make_server(handler)
    pending = await _respond_from_callback(server, query("www.sem.test."))
    assert type(pending) is not tuple
    (reply,) = await asyncio.get_running_loop().create_task(_await(pending))
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOERROR  # not SERVFAIL: the timeout worked
    assert handler.in_task == [True]


async def test_an_inline_handler_that_waits_finishes_as_a_task_and_can_be_cancelled() -> None:
    handler = Waits()
    server = make_server(handler)
    ready = await _respond_from_callback(server, query("www.sem.test."))
    assert type(ready) is tuple
    pending = await _respond_from_callback(server, query("slow.short.sem.test."))
    (reply,) = await asyncio.get_running_loop().create_task(_await(pending))
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN
    task = asyncio.get_running_loop().create_task(
        _await(await _respond_from_callback(server, query("slow.long.sem.test.")))
    )
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and handler.cancelled


async def _await(pending):
    return await pending
