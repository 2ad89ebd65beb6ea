"""Iterative resolution as a sans-IO state machine.

`Iteration.run(qname, rdtype)` is a generator: it *yields* `Query` actions (a message for one
server address, over UDP or TCP) and is *sent* `Reply` / `NoReply` events; it *returns* a
`Resolution`. It never touches a socket or a clock, so every fault (referral loop, lame
delegation, silence, truncation, long CNAME chains, poisoned records) is testable by feeding it
events. `nameserver.resolver.recursor` drives it over real sockets.

The walk: answer from the cache where it can (CNAMEs one hop at a time), otherwise start at the
closest cached delegation (or the hints), ask that zone's servers in turn (failover, a bounded
number of rounds, TCP after a truncated UDP reply), follow referrals downwards and CNAMEs across
zones, resolving name servers without glue on the way. Each response passes `bailiwick.sanitize`
before anything is cached or followed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Iterable

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from nameserver.resolver.bailiwick import ReplyKind, Sanitized, sanitize
from nameserver.resolver.errors import ResolutionFailed
from nameserver.resolver.hints import Hints, NameServer
from nameserver.resolver.rrcache import Kind, RRsetCache, Trust

#: EDNS option codes of the semantic query text (65001) and its embedding (65002).
OPTION_TEXT = 65001
OPTION_EMBEDDING = 65002

EDE = dns.edns.EDECode


@dataclass(frozen=True)
class ResolverConfig:
    """Limits and timing of iterative resolution; every default works."""

    port: int = 53  # the port every authoritative server listens on
    query_timeout: float = 0.8  # one query to one server
    total_timeout: float = 4.0  # one whole resolution (the driver enforces it)
    rounds: int = 2  # passes over a zone's servers before giving up on it
    max_queries: int = 48  # per resolution, sub-resolutions included
    max_referrals: int = 12
    max_cname: int = 8
    max_ns_depth: int = 3  # nesting of "resolve the name server's address first"
    udp_payload: int = 1232
    # a client's options passed on to the authoritative servers: the text, never the client's
    # embedding (an answer routed by it would be cached by QNAME for every client)
    forward_options: frozenset[int] = frozenset({OPTION_TEXT})
    learn_options: frozenset[int] = frozenset({OPTION_EMBEDDING})


@dataclass(frozen=True)
class Query:
    """Action: send `message` to `address`:`port` (over TCP when `tcp`), asked as authority for `zone`."""

    address: str
    port: int
    message: dns.message.Message
    zone: dns.name.Name
    tcp: bool = False


@dataclass(frozen=True)
class Reply:
    """Event: the server answered (`truncated` when a UDP reply had TC set or was cut short)."""

    message: dns.message.Message
    truncated: bool = False


@dataclass(frozen=True)
class NoReply:
    """Event: no usable reply (timeout or network error)."""

    reason: str


Event = Reply | NoReply


@dataclass(frozen=True)
class Resolution:
    """The outcome: what a recursive server puts in its response."""

    rcode: int
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    ede: dns.edns.EDEOption | None = None
    queries: int = 0  # how many queries went out (0: answered from the cache)
    options: tuple[dns.edns.Option, ...] = ()  # options learned from servers (e.g. the embedding)
    private: bool = False  # a semantic-cache shortcut from this client's own entries: no shared cache


@dataclass(frozen=True)
class _Outcome:
    kind: ReplyKind
    chain: tuple[dns.rrset.RRset, ...]
    soa: dns.rrset.RRset | None = None


Steps = Generator[Query, Event, "_Outcome"]


@dataclass
class Iteration:
    """One resolution's state: the shared cache, the hints, limits, and the EDNS options to send
    with every query of the chain (`options`: the `Recursor` chooses them)."""

    cache: RRsetCache
    hints: Hints
    config: ResolverConfig = field(default_factory=ResolverConfig)
    options: Iterable[dns.edns.Option] = ()
    count: bool = True  # count the question in the cache's hit/miss statistics
    queries: int = 0

    def __post_init__(self) -> None:
        self._forward = {o.otype: o for o in self.options}
        self._learned: dict[int, dns.edns.Option] = {}
        self._resolving: set[dns.name.Name] = set()

    # -- the entry point -----------------------------------------------------------------------

    def run(self, qname: dns.name.Name, rdtype: int) -> Generator[Query, Event, Resolution]:
        try:
            outcome = yield from self._chase(qname, rdtype, forward=True, depth=0)
        except ResolutionFailed as failure:
            return Resolution(failure.rcode, ede=failure.ede, queries=self.queries)
        learned = tuple(self._learned.values())
        if outcome.kind is ReplyKind.ANSWER:
            return Resolution(
                dns.rcode.NOERROR, outcome.chain, additional=self._additional(outcome.chain[-1]),
                queries=self.queries, options=learned,
            )
        authority = (outcome.soa,) if outcome.soa is not None else ()
        rcode = dns.rcode.NXDOMAIN if outcome.kind is ReplyKind.NXDOMAIN else dns.rcode.NOERROR
        return Resolution(rcode, outcome.chain, authority, queries=self.queries, options=learned)

    # -- CNAME chasing with the cache ----------------------------------------------------------

    def _chase(self, name: dns.name.Name, rdtype: int, *, forward: bool, depth: int) -> Steps:
        chain: list[dns.rrset.RRset] = []
        seen = {name}
        while True:
            hit = self.cache.get(name, rdtype, count=self.count and depth == 0)
            if hit is not None:
                if hit.kind is Kind.POSITIVE:
                    assert hit.rrset is not None  # a positive hit carries its RRset
                    return _Outcome(ReplyKind.ANSWER, (*chain, hit.rrset))
                kind = ReplyKind.NXDOMAIN if hit.kind is Kind.NXDOMAIN else ReplyKind.NODATA
                return _Outcome(kind, tuple(chain), hit.soa)
            cname = None if rdtype == dns.rdatatype.CNAME else self.cache.get(name, dns.rdatatype.CNAME, count=False)
            if cname is not None and cname.rrset is not None:
                chain.append(cname.rrset)
            else:
                reply = yield from self._lookup(name, rdtype, forward=forward, depth=depth)
                chain.extend(reply.chain)
                self._check_length(chain)
                if reply.kind is not ReplyKind.CNAME:
                    return _Outcome(reply.kind, tuple(chain), reply.soa)
            self._check_length(chain)
            name = chain[-1][0].target
            if name in seen:
                raise ResolutionFailed(EDE.OTHER, f"CNAME loop at {name}")
            seen.add(name)

    def _check_length(self, chain: list[dns.rrset.RRset]) -> None:
        if sum(rr.rdtype == dns.rdatatype.CNAME for rr in chain) > self.config.max_cname:
            raise ResolutionFailed(
                EDE.OTHER, f"CNAME chain longer than {self.config.max_cname} from {chain[0].name}"
            )

    # -- one name, from the closest delegation down --------------------------------------------

    def _lookup(self, name: dns.name.Name, rdtype: int, *, forward: bool, depth: int) -> Steps:
        zone, servers = self._closest(name)
        visited: list[dns.name.Name] = []
        while True:
            if zone in visited:
                path = " -> ".join(str(z) for z in (*visited, zone))
                raise ResolutionFailed(EDE.OTHER, f"referral loop resolving {name}: {path}")
            visited.append(zone)
            if len(visited) > self.config.max_referrals:
                raise ResolutionFailed(EDE.OTHER, f"more than {self.config.max_referrals} referrals resolving {name}")
            reply = yield from self._ask_zone(zone, servers, name, rdtype, forward=forward, depth=depth)
            self._remember(reply, name, rdtype)
            if reply.kind is not ReplyKind.REFERRAL:
                return _Outcome(reply.kind, reply.chain, reply.soa)
            assert reply.referral is not None
            zone, servers = reply.referral.name, self._servers_of(reply.referral)

    def _closest(self, name: dns.name.Name) -> tuple[dns.name.Name, tuple[NameServer, ...]]:
        apex = self.hints.apex
        if not name.is_subdomain(apex):
            raise ResolutionFailed(
                EDE.NOT_AUTHORITATIVE, f"{name} is outside this resolver's root {apex}", dns.rcode.REFUSED
            )
        node = name
        while node != apex:
            hit = self.cache.get(node, dns.rdatatype.NS, min_trust=Trust.GLUE, count=False)
            if hit is not None and hit.rrset is not None:
                return node, self._servers_of(hit.rrset)
            node = node.parent()
        return apex, self.hints.servers

    def _servers_of(self, ns: dns.rrset.RRset) -> tuple[NameServer, ...]:
        servers = []
        for rd in ns:
            addresses: list[str] = []
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                hit = self.cache.get(rd.target, rdtype, min_trust=Trust.GLUE, count=False)
                if hit is not None and hit.rrset is not None:
                    addresses.extend(r.address for r in hit.rrset)
            servers.append(NameServer(rd.target, tuple(addresses)))
        return tuple(servers)

    # -- asking one zone's servers -------------------------------------------------------------

    def _ask_zone(
        self, zone: dns.name.Name, servers: tuple[NameServer, ...], name: dns.name.Name, rdtype: int,
        *, forward: bool, depth: int,
    ) -> Generator[Query, Event, Sanitized]:
        failures: dict[str, str] = {}
        lame: set[str] = set()
        resolved: dict[dns.name.Name, tuple[str, ...]] = {}
        for _ in range(self.config.rounds):
            for server in servers:
                if server.name not in resolved:
                    resolved[server.name] = server.addresses or (yield from self._addresses_of(server.name, depth))
                    if not resolved[server.name]:
                        failures[str(server.name)] = "no address"
                for address in resolved[server.name]:
                    if address in lame:
                        continue
                    message = yield from self._exchange(address, zone, name, rdtype, forward)
                    if isinstance(message, str):
                        failures[address] = message
                        continue
                    reply = sanitize(message, zone, name, rdtype)
                    if reply.kind is ReplyKind.LAME:
                        lame.add(address)
                        failures[address] = f"lame: {reply.reason}"
                        continue
                    return reply
        detail = "; ".join(f"{k}: {v}" for k, v in failures.items()) or "no name servers"
        code = (
            EDE.NETWORK_ERROR
            if failures and all("network" in v for v in failures.values())
            else EDE.NO_REACHABLE_AUTHORITY
        )
        raise ResolutionFailed(code, f"no usable answer from the servers of {zone} for {name} ({detail})")

    def _exchange(
        self, address: str, zone: dns.name.Name, name: dns.name.Name, rdtype: int, forward: bool
    ) -> Generator[Query, Event, dns.message.Message | str]:
        """One server's reply to one question (retried over TCP when truncated), or why not."""
        query = self._make_query(name, rdtype, forward)
        tcp = False
        while True:
            self.queries += 1
            if self.queries > self.config.max_queries:
                raise ResolutionFailed(EDE.OTHER, f"gave up after {self.config.max_queries} queries resolving {name}")
            event = yield Query(address, self.config.port, query, zone, tcp=tcp)
            if isinstance(event, NoReply):
                return f"{event.reason} over {'TCP' if tcp else 'UDP'}"
            if (event.truncated or event.message.flags & dns.flags.TC) and not tcp:
                tcp = True
                continue
            if event.truncated or event.message.flags & dns.flags.TC:
                return "truncated over TCP"
            for option in event.message.options:
                if option.otype in self.config.learn_options:
                    self._learned[option.otype] = option
                    if forward:
                        self._forward[option.otype] = option
            return event.message

    def _make_query(self, name: dns.name.Name, rdtype: int, forward: bool) -> dns.message.Message:
        options = list(self._forward.values()) if forward else []
        query = dns.message.make_query(
            name, dns.rdatatype.RdataType.make(rdtype), use_edns=0, payload=self.config.udp_payload, options=options
        )
        query.flags &= ~dns.flags.RD
        return query

    def _addresses_of(self, ns_name: dns.name.Name, depth: int) -> Generator[Query, Event, tuple[str, ...]]:
        """Resolve a name server that came without glue (bounded depth, no cycles)."""
        if depth >= self.config.max_ns_depth or ns_name in self._resolving:
            return ()
        self._resolving.add(ns_name)
        try:
            outcome = yield from self._chase(ns_name, dns.rdatatype.A, forward=False, depth=depth + 1)
        except ResolutionFailed:
            return ()
        finally:
            self._resolving.discard(ns_name)
        if outcome.kind is not ReplyKind.ANSWER:
            return ()
        return tuple(rd.address for rd in outcome.chain[-1])

    # -- caching -------------------------------------------------------------------------------

    def _remember(self, reply: Sanitized, name: dns.name.Name, rdtype: int) -> None:
        trust = Trust.ANSWER if reply.authoritative else Trust.GLUE
        for rrset in reply.chain:
            self.cache.put(rrset, trust)
        for rrset in (*reply.glue, *reply.additional):
            self.cache.put(rrset, Trust.GLUE)
        if reply.referral is not None:
            self.cache.put(reply.referral, Trust.GLUE)
        if reply.soa is None:
            return
        end = reply.target or name
        if reply.kind is ReplyKind.NXDOMAIN:
            self.cache.put_nxdomain(end, reply.soa)
        elif reply.kind is ReplyKind.NODATA:
            self.cache.put_nodata(end, rdtype, reply.soa)

    def _additional(self, final: dns.rrset.RRset) -> tuple[dns.rrset.RRset, ...]:
        """Addresses of SRV/MX targets known to the cache (glue-level trust is enough here)."""
        if final.rdtype not in (dns.rdatatype.SRV, dns.rdatatype.MX):
            return ()
        found = []
        for rd in final:
            target = rd.target if final.rdtype == dns.rdatatype.SRV else rd.exchange
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                hit = self.cache.get(target, rdtype, min_trust=Trust.GLUE, count=False)
                if hit is not None and hit.rrset is not None:
                    found.append(hit.rrset)
        return tuple(found)
