"""The recursion handler inside the real server (ServerRunner), asked by a stub over UDP and TCP."""
from __future__ import annotations

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from resolver_fakes import hierarchy, recursive_server, running


async def test_stub_query_over_udp_and_tcp_gets_ra_and_the_chain() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        query = dns.message.make_query("breach.q.semantic.root.", "SRV", use_edns=0)
        udp = await dns.asyncquery.udp(query, host, 2.0, rport)
        tcp = await dns.asyncquery.tcp(query, host, 2.0, rport)
    for reply in (udp, tcp):
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.RA and reply.flags & dns.flags.RD
        assert not reply.flags & dns.flags.AA
        assert reply.answer[-1].rdtype == dns.rdatatype.SRV
        assert len(reply.answer) == 4
    assert tcp.answer[0].ttl <= udp.answer[0].ttl


async def test_failure_carries_an_extended_dns_error() -> None:
    servers = hierarchy(legal=lambda q, r, t: None)
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        query = dns.message.make_query("breach.q.semantic.root.", "SRV", use_edns=0)
        reply = await dns.asyncquery.udp(query, host, 3.0, rport)
        fine = await dns.asyncquery.udp(dns.message.make_query("fever.q.semantic.root.", "SRV"), host, 3.0, rport)
    assert reply.rcode() == dns.rcode.SERVFAIL
    ede = [o for o in reply.options if o.otype == dns.edns.OptionType.EDE]
    assert ede and ede[0].code == dns.edns.EDECode.NO_REACHABLE_AUTHORITY
    assert fine.rcode() == dns.rcode.NOERROR


async def test_query_without_rd_is_not_recursed() -> None:
    servers = hierarchy()
    async with running(list(servers.values())) as port, recursive_server(port) as (host, rport):
        query = dns.message.make_query("breach.q.semantic.root.", "SRV")
        query.flags &= ~dns.flags.RD
        reply = await dns.asyncquery.udp(query, host, 2.0, rport)
    assert reply.rcode() == dns.rcode.REFUSED
    assert not servers["root"].received
