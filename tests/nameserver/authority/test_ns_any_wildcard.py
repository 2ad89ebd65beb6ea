"""Answers the NSD differential run checked, over real sockets, each asked twice (the second time
in another case, from the wire cache): ANY gets one RRset (RFC 8482 §4.1, as NSD picks it) over
UDP and TCP; wildcard CNAMEs are synthesised and followed (RFC 1034 §4.3.2, RFC 4592); names in
no zone of ours are REFUSED with EDE 20 (Not Authoritative)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from helpers.dnswire import tcp_exchange, udp_exchange
from helpers.server import ServerHandle, running_server

ZONE = """\
$ORIGIN any.test.
$TTL 600
@        SOA   ns1 hostmaster ( 2026120201 3600 900 1209600 60 )
@        NS    ns1
@        TXT   "apex"
@        MX    10 mail
ns1      A     192.0.2.53
mail     A     192.0.2.25
mail     AAAA  2001:db8::25
Multi    NS    ns.elsewhere.example.
multi    DS    60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
info     TXT   "info"
info     HINFO "PC" "Linux"
*.w      CNAME mail
*.w-nx   CNAME nowhere
*.w-out  CNAME target.elsewhere.example.
*.w-loop CNAME x.w-loop
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    directory: Path = tmp_path_factory.mktemp("zones")
    (directory / "any.test.zone").write_text(ZONE)
    with running_server(directory, ["--no-semantic"]) as handle:
        yield handle


def ask(server: ServerHandle, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0)
    reply = (tcp_exchange if tcp else udp_exchange)(server.host, server.port, query.to_wire())
    return dns.message.from_wire(reply)


def twice(server: ServerHandle, name: str, rdtype: str, tcp: bool = False) -> list[dns.message.Message]:
    """The reply to `name`, then to `name` in upper case (a wire cache hit)."""
    return [ask(server, name, rdtype, tcp), ask(server, name.upper(), rdtype, tcp)]


def answer(reply: dns.message.Message) -> list[tuple[str, str, list[str]]]:
    """(owner as sent, type, RDATA in lower case: names in it may point at the question's spelling,
    as NSD's do) per answer RRset."""
    return [
        (r.name.to_text(), dns.rdatatype.to_text(r.rdtype), sorted(d.to_text().lower() for d in r))
        for r in reply.answer
    ]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_any_gets_one_rrset_chosen_as_nsd_does(server: ServerHandle, tcp: bool) -> None:
    for first, again in (twice(server, "any.test.", "ANY", tcp), twice(server, "mail.any.test.", "ANY", tcp)):
        assert len(first.answer) == 1 and first.flags & dns.flags.AA
        assert answer(again) == [(again.question[0].name.to_text(), *answer(first)[0][1:])]
    apex, mail = ask(server, "any.test.", "ANY", tcp), ask(server, "mail.any.test.", "ANY", tcp)
    assert answer(apex)[0][1] == "SOA" and answer(mail)[0][1] == "A"  # A, AAAA, SOA, MX, PTR first
    assert answer(ask(server, "info.any.test.", "ANY", tcp))[0][1] == "HINFO"  # else the last other type


def test_any_at_a_wildcard_cname_is_the_cname_alone(server: ServerHandle) -> None:
    for reply in twice(server, "a.w.any.test.", "ANY"):
        assert answer(reply) == [(reply.question[0].name.to_text(), "CNAME", ["mail.any.test."])]


def test_any_at_a_cut_is_a_referral(server: ServerHandle) -> None:
    reply = ask(server, "multi.any.test.", "ANY")
    assert reply.answer == [] and not reply.flags & dns.flags.AA
    assert [dns.rdatatype.to_text(r.rdtype) for r in reply.authority] == ["NS"]


def test_wildcard_cname_is_synthesised_and_followed(server: ServerHandle) -> None:
    for reply in twice(server, "Host.w.any.test.", "A"):
        owner = reply.question[0].name.to_text()
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert [(o.lower(), t, d) for o, t, d in answer(reply)[1:]] == [("mail.any.test.", "A", ["192.0.2.25"])]
        assert answer(reply)[0] == (owner, "CNAME", ["mail.any.test."])
    deeper = ask(server, "a.b.w.any.test.", "AAAA")
    assert answer(deeper)[-1][1:] == ("AAAA", ["2001:db8::25"])


def test_wildcard_cname_to_a_missing_name_is_nxdomain_with_the_cname(server: ServerHandle) -> None:
    for reply in twice(server, "x.w-nx.any.test.", "A"):
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert answer(reply) == [(reply.question[0].name.to_text(), "CNAME", ["nowhere.any.test."])]
        assert [dns.rdatatype.to_text(r.rdtype) for r in reply.authority] == ["SOA"]


def test_wildcard_cname_out_of_zone_and_looping(server: ServerHandle) -> None:
    out = ask(server, "x.w-out.any.test.", "A")
    assert out.rcode() == dns.rcode.NOERROR
    assert answer(out) == [("x.w-out.any.test.", "CNAME", ["target.elsewhere.example."])]
    loop = ask(server, "y.w-loop.any.test.", "A")
    assert loop.rcode() == dns.rcode.NOERROR
    assert [a[0].lower() for a in answer(loop)] == ["y.w-loop.any.test.", "x.w-loop.any.test."]


def test_names_outside_our_zones_are_refused_not_authoritative(server: ServerHandle) -> None:
    for reply in twice(server, "example.com.", "A"):
        assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.AA
        assert [int(o.code) for o in reply.options if isinstance(o, dns.edns.EDEOption)] == [20]
