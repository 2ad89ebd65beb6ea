"""`semdns trace TEXT --server ADDR:PORT`: every hop of a question's resolution, like `dig +trace`.

Starts at the given server as the root of the hierarchy, resolves iteratively with an empty cache,
and prints for each hop the server asked, the zone it was asked as, the records it returned, the
routing stage and confidence (from the `explain` form at that server, when the hop was a semantic
decision) and the time each took.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from codec import CodecError, parse_semantic_name
from nameserver.config import parse_address
from nameserver.errors import NameserverError
from nameserver.resolver import Hints, NoReply, Query, Recursor, Reply, ResolverConfig
from nameserver.resolver.rrcache import RRsetCache
from nameserver.resolver.transport import DnsTransport, TimedTransport
from sdk.errors import SdkError
from sdk.message import Query as ExplainQuery
from sdk.route import DEFAULT_ZONE, explain_hops, explain_query, question_form, question_query
from sdk.wire import udp_round_async


@dataclass(frozen=True)
class Hop:
    query: Query
    event: Reply | NoReply
    seconds: float


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trace", help="show every hop of a question's resolution (like dig +trace)")
    parser.add_argument("text", help="the question")
    parser.add_argument("--server", required=True, metavar="ADDR:PORT", help="a server of the root zone")
    parser.add_argument("--zone", default=DEFAULT_ZONE, help=f"the root of the hierarchy (default {DEFAULT_ZONE})")
    parser.add_argument("--type", default="SRV", help="query type (default SRV)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per query (default 1)")
    parser.add_argument("--no-explain", action="store_true", help="skip the explain query at each hop")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_address(args.server, 53)
    except NameserverError as exc:
        print(f"semdns trace: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(trace(args, host, port))


async def trace(args: argparse.Namespace, host: str, port: int) -> int:
    hops: list[Hop] = []
    try:
        query = question_query(args.text, args.zone, dns.rdatatype.from_text(args.type)).to_message()
    except SdkError as exc:
        print(f"semdns trace: {exc}", file=sys.stderr)
        return 2
    config = ResolverConfig(port=port, query_timeout=args.timeout, total_timeout=max(5.0, 8 * args.timeout))
    recursor = Recursor(Hints.single(args.zone, host), config=config, cache=RRsetCache())
    transport = TimedTransport(DnsTransport(args.timeout), lambda q, e, s: hops.append(Hop(q, e, s)))
    start = time.perf_counter()
    question = query.question[0]
    result = await recursor.resolve(question.name, question.rdtype, tuple(query.options), transport=transport)
    total = time.perf_counter() - start
    print(f"; semdns trace {question.name} {dns.rdatatype.to_text(question.rdtype)} from {host}:{port}")
    for number, hop in enumerate(hops, 1):
        await print_hop(number, hop, args)
    status = dns.rcode.to_text(dns.rcode.Rcode.make(result.rcode))
    print(f";; result: {status} after {len(hops)} queries in {total * 1000:.1f} ms")
    for rrset in result.answer:
        print(rrset.to_text())
    if result.ede is not None:
        print(f";; EDE {result.ede.code}: {result.ede.text}")
    return 0 if result.rcode == dns.rcode.NOERROR else 1


async def print_hop(number: int, hop: Hop, args: argparse.Namespace) -> None:
    q = hop.query
    question = q.message.question[0]
    head = (f";; hop {number}: {q.address}:{q.port} as {q.zone} over {'TCP' if q.tcp else 'UDP'}: "
            f"{question.name} {dns.rdatatype.to_text(question.rdtype)} in {hop.seconds * 1000:.1f} ms")
    print(head)
    if isinstance(hop.event, NoReply):
        print(f"   no reply: {hop.event.reason}")
        return
    reply = hop.event.message
    flags = dns.flags.to_text(reply.flags)
    print(f"   {dns.rcode.to_text(reply.rcode())} [{flags}]{' truncated' if hop.event.truncated else ''}")
    for section in (reply.answer, reply.authority, reply.additional):
        for rrset in section:
            for line in rrset.to_text().splitlines():
                print(f"   {line}")
    semantic = any(
        rr.rdtype == dns.rdatatype.CNAME and b"q" in [label.lower() for label in rr[0].target.labels]
        for rr in reply.answer
    )
    if semantic and not args.no_explain:
        await print_explain(q, args.text, args.timeout)


def hop_explain_query(q: Query, text: str) -> ExplainQuery:
    """The explain query of `text` under the zone this hop asked about (its own form there: the
    name the hop carried may fit in the `q` form and not in the `explain` one), without RD."""
    zone = parse_semantic_name(q.message.question[0].name).zone
    ask = explain_query(question_form(text, zone))
    ask.rd = False
    return ask


async def print_explain(q: Query, text: str, timeout: float) -> None:
    try:
        ask = hop_explain_query(q, text)
    except (CodecError, SdkError) as exc:
        print(f"   explain: not asked ({exc})")
        return
    start = time.perf_counter()
    try:
        (reply,) = await udp_round_async([ask], (q.address, q.port), timeout, retry=timeout)
    except (dns.exception.DNSException, OSError, EOFError) as exc:
        print(f"   explain: no answer ({exc})")
        return
    took = (time.perf_counter() - start) * 1000
    hops = explain_hops(reply) if reply.rcode == dns.rcode.NOERROR else []
    if not hops:
        print(f"   explain: {dns.rcode.to_text(dns.rcode.Rcode.make(reply.rcode))} (no explain data) in {took:.1f} ms")
        return
    for step in hops:
        stage = step.get("stage", "-")
        confidence = step.get("confidence") or step.get("conf") or "-"
        rest = " ".join(f"{k}={v}" for k, v in step.items() if k not in ("stage", "confidence", "conf"))
        print(f"   stage={stage} confidence={confidence} {rest}")
    print(f"   (explain took {took:.1f} ms)")
