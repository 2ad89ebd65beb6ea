"""The allow-recursion ACL: RD queries from other clients are REFUSED (EDE 18), also when the wire
cache holds the answer; authoritative answers stay theirs; `--allow-recursion` reaches the handler."""
from __future__ import annotations

import ipaddress

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import dns.zone

from nameserver.build import RecursionOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.resolver import Hints, Recursor
from nameserver.resolver.rrcache import RRsetCache
from nameserver.server import DnsServer
from tools.cli import build_parser
from tools.cmd_serve import options_from_args
from zones.catalog import ZoneCatalog, ZoneStore

OWN_ZONE = """$ORIGIN own.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 192.0.2.80
"""
INSIDE = ("127.0.0.1", 40000)
OUTSIDE = ("192.0.2.1", 40000)


class NoNetwork:
    async def exchange(self, query):
        raise AssertionError(f"the answer is cached; nothing should be asked: {query}")


def server(**recursion) -> DnsServer:
    cache = RRsetCache()
    cache.put(dns.rrset.from_text("breach.q.semantic.root.", 300, "IN", "CNAME", "_llm._tcp.legal.semantic.root."))
    engines = "_llm._tcp.legal.semantic.root."
    cache.put(dns.rrset.from_text(engines, 300, "IN", "SRV", "10 1 8110 llm1.legal.semantic.root."))
    recursor = Recursor(Hints.single("semantic.root.", "127.0.0.1"), cache=cache, transport=NoNetwork())
    own = dns.name.from_text("own.test.")
    store = ZoneStore(ZoneCatalog(zones={own: dns.zone.from_text(OWN_ZONE, relativize=False)}))
    options = ServerOptions(config=ServerConfig(uvloop=False), semantic=None, recursion=RecursionOptions(**recursion))
    return build_server(options, store=store, recursor=recursor).server


async def ask(srv: DnsServer, name: str, client: tuple[str, int], rdtype: str = "SRV") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0)
    replies = srv.respond(query.to_wire(), client, "udp")
    if type(replies) is not tuple:
        replies = await replies
    return dns.message.from_wire(replies[0])


def ede_codes(reply: dns.message.Message) -> list[int]:
    return [o.code for o in reply.options if o.otype == dns.edns.OptionType.EDE]


async def test_recursion_is_loopback_only_by_default_even_from_the_wire_cache() -> None:
    srv = server()
    inside = await ask(srv, "breach.q.semantic.root.", INSIDE)
    assert inside.rcode() == dns.rcode.NOERROR and inside.flags & dns.flags.RA
    for _ in range(2):  # the answer now sits in the wire cache: still refused
        outside = await ask(srv, "breach.q.semantic.root.", OUTSIDE)
        assert outside.rcode() == dns.rcode.REFUSED and not outside.answer
        assert ede_codes(outside) == [dns.edns.EDECode.PROHIBITED]
    assert srv.wirecache is not None and srv.wirecache.hits == 0
    again = await ask(srv, "breach.q.semantic.root.", INSIDE)
    assert again.answer == inside.answer and srv.wirecache.hits == 1


async def test_authoritative_answers_are_not_affected() -> None:
    srv = server()
    reply = await ask(srv, "www.own.test.", OUTSIDE, "A")  # RD set, as dig sends it
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert str(reply.answer[0][0]) == "192.0.2.80"


async def test_allowed_networks_are_served() -> None:
    srv = server(allow_recursion=(ipaddress.ip_network("192.0.2.0/24"),))
    outside = await ask(srv, "breach.q.semantic.root.", OUTSIDE)
    assert outside.rcode() == dns.rcode.NOERROR and outside.answer
    inside = await ask(srv, "breach.q.semantic.root.", INSIDE)  # loopback is no longer in the ACL
    assert inside.rcode() == dns.rcode.REFUSED


def test_the_flag_reaches_the_recursion_options() -> None:
    parse = build_parser().parse_args
    args = parse(["serve", "--recursive", "--root-hints", "hints", "--allow-recursion", "10.0.0.0/8",
                  "--allow-recursion", "2001:db8::/32"])
    assert options_from_args(args).recursion.allow_recursion == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    default = options_from_args(parse(["serve", "--recursive", "--root-hints", "hints"]))
    assert default.recursion.allow_recursion == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
