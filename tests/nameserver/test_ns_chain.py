"""The sans-IO core and the chain, in-process: order by slot, fallthrough, SERVFAIL on a crash."""
from __future__ import annotations

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.update
import dns.zone
import pytest
from helpers.testzones import parent_zone

from nameserver.chain import ORDER, build_chain
from nameserver.config import ServerConfig
from nameserver.errors import ConfigError
from nameserver.request import Next, Request, Response
from nameserver.server import DnsServer
from zones.catalog import ZoneCatalog, ZoneStore

CLIENT = ("127.0.0.1", 5353)


def make_server(*extra) -> DnsServer:
    zone = dns.zone.from_text(parent_zone(), relativize=False)
    store = ZoneStore(ZoneCatalog(zones={dns.name.from_text("sem.test."): zone}))
    config = ServerConfig()
    return DnsServer(store, build_chain(store, config, extra), config)


class Crashing:
    name = "semantic"

    async def serve(self, request: Request, next: Next) -> Response:
        if request.qname.labels[0] == b"crash":
            raise RuntimeError("boom")
        return await next(request)


class Recording:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    async def serve(self, request: Request, next: Next) -> Response:
        self.seen.append(self.name)
        return await next(request)


async def test_handler_exception_gives_servfail_and_service_goes_on() -> None:
    server = make_server(Crashing())
    (wire,) = await server.handle(dns.message.make_query("crash.sem.test.", "A").to_wire(), CLIENT, "udp")
    assert dns.message.from_wire(wire).rcode() == dns.rcode.SERVFAIL
    (wire,) = await server.handle(dns.message.make_query("www.sem.test.", "A").to_wire(), CLIENT, "udp")
    assert dns.message.from_wire(wire).rcode() == dns.rcode.NOERROR


async def test_extra_handlers_run_in_their_slot_whatever_the_argument_order() -> None:
    seen: list[str] = []
    server = make_server(Recording("recursion", seen), Recording("semantic", seen), Recording("cache", seen))
    expected = ["chaos", "cache", "transfer", "semantic", "authority", "recursion"]
    assert [h.name for h in server.chain.handlers] == expected
    await server.handle(dns.message.make_query("example.com.", "A").to_wire(), CLIENT, "udp")
    assert seen == ["cache", "semantic", "recursion"]  # authority passed the foreign name on


def test_unknown_slot_and_duplicate_slot_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown handler slot"):
        make_server(Recording("nonsense", []))
    with pytest.raises(ConfigError, match="share a slot"):
        make_server(Recording("semantic", []), Recording("semantic", []))
    assert ORDER.index("semantic") < ORDER.index("authority")


async def test_update_without_a_handler_is_notimp() -> None:
    server = make_server()
    update = dns.update.UpdateMessage("sem.test.")
    update.add("new.sem.test.", 300, "A", "192.0.2.50")
    (wire,) = await server.handle(update.to_wire(), CLIENT, "udp")
    reply = dns.message.from_wire(wire)
    assert reply.rcode() == dns.rcode.NOTIMP and reply.opcode() == dns.opcode.UPDATE


async def test_responses_are_dropped_not_answered() -> None:
    server = make_server()
    query = dns.message.make_query("www.sem.test.", "A")
    response = dns.message.make_response(query)
    assert await server.handle(response.to_wire(), CLIENT, "udp") == ()
