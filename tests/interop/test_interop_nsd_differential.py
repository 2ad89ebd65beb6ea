"""Differential test: NSD 4 and `semdns serve` on the same zonefile answer the same queries alike.

Both serve `ZONEFILE` (written for this test: wildcards, CNAME wildcards, a wildcard beside a
delegation, empty non-terminals, data occluded below cuts, CNAME chains in and out of the zone and
CNAME loops, DS at a cut, every common type, mixed-case owners). A few thousand generated queries
(names that exist, do not exist, sit below wildcards or cuts, in random case; every common QTYPE
and ANY; with and without EDNS, with and without DO and RD) go to both over UDP, each twice in two
spellings (the second one meets our wire cache), and a sample over TCP. Compared: RCODE, the AA,
TC, RD and RA flags, OPT presence, its UDP size, DO and EDE codes, the answer and authority
sections as sets of RRsets with TTLs, and that the first answer RRset carries the QNAME in the
client's case. The additional section is not compared (NSD runs with `minimal-responses: yes`;
RFC 1034 §4.3.2 leaves it to the server).

NSD runs with `refuse-any: no`: its `yes` answers ANY over UDP with an empty TC=1 reply, a
detour through TCP that RFC 8482 §4 does not list, while `no` answers with one RRset (RFC 8482
§4.1) over every transport, which is what we do. Differences an RFC allows are in `ALLOWANCES`,
each as narrow as the case it names; anything else fails the test with a table of differences.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest
from helpers.peers import Address, running_nsd_zonefile
from helpers.server import running_server

pytestmark = [pytest.mark.external, pytest.mark.model]

ORIGIN = "diff.test."
VERSION = "differential 1.0"
IDENTITY = "differential-host"
NSD_OPTIONS = ("minimal-responses: yes", f'version: "{VERSION}"', f'identity: "{IDENTITY}"')
SEED = 20261202
TIMEOUT = 2.0
TCP_SAMPLE = 300

ZONEFILE = """\
$ORIGIN diff.test.
$TTL 3600
@            SOA   ns1 hostmaster ( 2026120201 3600 900 1209600 300 )
@            NS    ns1
@            NS    ns2.elsewhere.example.
@            A     192.0.2.1
@            AAAA  2001:db8::1
@            MX    10 mail
@            MX    20 mx.elsewhere.example.
@            TXT   "v=spf1 -all"
@            CAA   0 issue "ca.example.net"
ns1          A     192.0.2.53
ns1          AAAA  2001:db8::53
mail         A     192.0.2.25
www          A     192.0.2.80
www          A     192.0.2.81
www          AAAA  2001:db8::80
www          TXT   "web"
WwW2         A     192.0.2.82
MiXeD.CaSe   TXT   "mixed case owner"
txt          TXT   "one" "two"
txt          TXT   "three"
big          TXT   "{big}"
big          TXT   "{big}-2"
big          TXT   "{big}-3"
_sip._udp    SRV   10 60 5060 sip
_sip._udp    SRV   20 0 5060 sip.elsewhere.example.
sip          A     192.0.2.60
80.ptr       PTR   www.diff.test.
naptr        NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.net!" .
sshfp        SSHFP 1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac
hinfo        HINFO "PC" "Linux"
multi        MX    5 mail
multi        TXT   "multi"
multi        HINFO "VAX" "VMS"
multi        NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp.diff.test.
alias        CNAME www
alias2       CNAME alias
Alias3       CNAME WwW2
ext          CNAME www.elsewhere.example.
to-nx        CNAME nothere
to-ent       CNAME b.ent
to-sub       CNAME host.sub
to-wild      CNAME foo.wild
loop1        CNAME loop2
loop2        CNAME loop1
self         CNAME self
a.b.ent      A     192.0.2.7
x.y.z.deep   TXT   "deep"
*.wild       A     192.0.2.100
*.wild       TXT   "wild"
*.wild       MX    10 mail
explicit.wild A    192.0.2.101
ent.below.wild TXT "below"
*.cw         CNAME www
*.cw-ext     CNAME target.elsewhere.example.
*.cw-nx      CNAME nowhere
*.cw-loop    CNAME x.cw-loop
*.cw-chain   CNAME alias2
*.cw-wild    CNAME any.wild
*.cw-sub     CNAME host.sub
sub          NS    ns1.sub
sub          NS    ns.elsewhere.example.
sub          DS    60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
ns1.sub      A     192.0.2.200
occluded.sub A     192.0.2.201
*.dz         A     192.0.2.150
*.dz         TXT   "dz"
cut.dz       NS    ns.elsewhere.example.
*.cut.dz     A     192.0.2.151
q            TXT   "a label the semantic forms use"
x.q.plain    A     192.0.2.160
*.explain    CNAME www
""".format(big="x" * 200)

NAMES = (
    "@", "ns1", "mail", "www", "www2", "mixed.case", "case", "txt", "big", "_sip._udp", "_udp", "sip",
    "80.ptr", "ptr", "naptr", "sshfp", "hinfo", "multi", "alias", "alias2", "alias3", "ext", "to-nx",
    "to-ent", "to-sub", "to-wild", "loop1", "loop2", "self", "ent", "b.ent", "a.b.ent", "c.b.ent",
    "nx.a.b.ent", "deep", "z.deep", "y.z.deep", "x.y.z.deep", "w.x.y.z.deep", "nope.deep",
    "*.wild", "wild", "foo.wild", "a.b.wild", "explicit.wild", "sub.explicit.wild", "below.wild",
    "x.below.wild", "ent.below.wild", "x.ent.below.wild", "x.cw", "deep.x.cw", "*.cw", "cw",
    "x.cw-ext", "x.cw-nx", "x.cw-loop", "y.cw-loop", "x.cw-chain", "x.cw-wild", "x.cw-sub",
    "sub", "ns1.sub", "occluded.sub", "x.occluded.sub", "host.sub", "a.b.sub", "dz", "x.dz", "a.b.dz",
    "*.dz", "cut.dz", "x.cut.dz", "*.cut.dz", "nothere", "nx", "a.nx", "zz-top",
    "example.com.", "diff.test.example.", "test.",
    # names with the semantic form labels (`q`, `explain`) in a zone that does no routing: plain DNS
    "q", "x.q", "hello-world.q", "q.plain", "x.q.plain", "y.q.plain", "q.cw", "what.q.cw", "x.q.wild",
    "explain", "why.explain", "is-it.q.explain", "q.sub", "x.q.sub",
)
QTYPES = (
    "A", "AAAA", "MX", "TXT", "SRV", "NS", "CNAME", "PTR", "CAA", "NAPTR", "SSHFP", "HINFO", "DS", "SOA",
    "ANY", "DNAME", "TYPE65",
)
# (EDNS payload or None for no OPT, DO bit, a client COOKIE option as dig sends by default)
EDNS_VARIANTS = (
    (None, False, False), (512, False, False), (1232, False, False), (1232, True, False), (4096, True, False),
    (1232, False, True), (4096, True, True),
)
COOKIE = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, bytes(range(1, 9)))


@dataclass(frozen=True)
class Query:
    name: str  # as sent, case included
    qtype: str
    payload: int | None
    do: bool
    cookie: bool
    rd: bool
    tcp: bool = False
    qclass: str = "IN"

    def message(self) -> dns.message.Message:
        message = dns.message.make_query(
            self.name, self.qtype, self.qclass, use_edns=self.payload is not None, payload=self.payload or 0,
            want_dnssec=self.do, options=[COOKIE] if self.cookie else None,
        )
        message.flags = dns.flags.RD if self.rd else 0
        return message

    def __str__(self) -> str:
        edns = (
            "noedns"
            if self.payload is None
            else f"edns{self.payload}{'+do' if self.do else ''}{'+cookie' if self.cookie else ''}"
        )
        return f"{self.name} {self.qclass} {self.qtype} {edns}{' rd' if self.rd else ''}{' tcp' if self.tcp else ''}"


RRsetKey = tuple[str, str, str, int, frozenset[str]]


@dataclass(frozen=True)
class Digest:
    """What is compared of one reply."""

    rcode: str
    flags: frozenset[str]
    opt: tuple[int, bool, frozenset[int]] | None  # UDP size, DO, EDE codes
    answer: frozenset[RRsetKey]
    authority: frozenset[RRsetKey]
    first_owner: str | None  # the first answer RRset's owner, case as sent

    @classmethod
    def of(cls, reply: dns.message.Message) -> "Digest":
        flags = frozenset(f for f in ("AA", "TC", "RD", "RA") if reply.flags & dns.flags.Flag[f])
        opt = None
        if reply.edns >= 0:
            edes = frozenset(int(o.code) for o in reply.options if isinstance(o, dns.edns.EDEOption))
            opt = (reply.payload, bool(reply.ednsflags & dns.flags.DO), edes)
        first = reply.answer[0].name.to_text() if reply.answer else None
        return cls(dns.rcode.to_text(reply.rcode()), flags, opt, _rrsets(reply.answer), _rrsets(reply.authority), first)


def _rrsets(section: list) -> frozenset[RRsetKey]:
    return frozenset(
        (r.name.to_text().lower(), dns.rdataclass.to_text(r.rdclass), dns.rdatatype.to_text(r.rdtype), r.ttl,
         frozenset(d.to_text().lower() for d in r))
        for r in section
    )


@dataclass(frozen=True)
class Difference:
    query: Query
    field: str
    ours: object
    nsd: object

    def __str__(self) -> str:
        return f"{self.query}: {self.field}: ours {self.ours!r} / nsd {self.nsd!r}"


@dataclass(frozen=True)
class Allowance:
    """A difference an RFC allows: `applies` says whether it covers one."""

    rfc: str
    why: str
    applies: Callable[[Difference, Digest, Digest], bool]


def _truncated_sections(diff: Difference, ours: Digest, nsd: Digest) -> bool:
    return diff.field in ("answer", "authority", "first_owner") and "TC" in ours.flags and "TC" in nsd.flags


ALLOWANCES = (
    Allowance(
        "RFC 2181 §9", "a reply with TC=1 is incomplete: what each server puts in its sections is not compared",
        _truncated_sections,
    ),
)


def compare(query: Query, ours: Digest, nsd: Digest) -> list[Difference]:
    """The differences between two digests that no allowance covers."""
    found = [
        Difference(query, name, getattr(ours, name), getattr(nsd, name))
        for name in ("rcode", "flags", "opt", "answer", "authority", "first_owner")
        if getattr(ours, name) != getattr(nsd, name)
    ]
    return [d for d in found if not any(a.applies(d, ours, nsd) for a in ALLOWANCES)]


def absolute(name: str) -> str:
    if name.endswith("."):
        return name
    return ORIGIN if name == "@" else f"{name}.{ORIGIN}"


def scramble(name: str, rng: random.Random) -> str:
    """`name` in a random mix of upper and lower case."""
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def udp_queries(rng: random.Random) -> list[Query]:
    """Every name with every QTYPE, each in one EDNS/DO/RD variant, then again in another spelling."""
    queries = []
    for name in NAMES:
        for qtype in QTYPES:
            payload, do, cookie = rng.choice(EDNS_VARIANTS)
            rd = rng.random() < 0.3
            spelling = absolute(name)
            first = spelling if rng.random() < 0.5 else scramble(spelling, rng)
            queries.append(Query(first, qtype, payload, do, cookie, rd))
            queries.append(Query(scramble(spelling, rng), qtype, payload, do, cookie, rd))
    return queries


def tcp_queries(rng: random.Random, udp: list[Query]) -> list[Query]:
    return [Query(q.name, q.qtype, q.payload, q.do, q.cookie, q.rd, tcp=True) for q in rng.sample(udp, TCP_SAMPLE)]


def ask(address: Address, query: Query) -> Digest:
    host, port = address
    send = dns.query.tcp if query.tcp else dns.query.udp
    return Digest.of(send(query.message(), host, port=port, timeout=TIMEOUT))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Address, Address]]:
    """(ours, NSD) on the same zonefile."""
    directory = tmp_path_factory.mktemp("zones")
    zonefile = directory / f"{ORIGIN}zone"
    zonefile.write_text(ZONEFILE)
    flags = ["--version", VERSION, "--identity", IDENTITY]  # as operators run it: semantic routing on
    with running_server(directory, flags) as ours, running_nsd_zonefile(ORIGIN, zonefile, NSD_OPTIONS) as nsd:
        yield (ours.host, ours.port), nsd.address


def differences(servers: tuple[Address, Address], queries: list[Query]) -> list[Difference]:
    ours, nsd = servers
    found: list[Difference] = []
    for query in queries:
        found.extend(compare(query, ask(ours, query), ask(nsd, query)))
    return found


def report(found: list[Difference], total: int) -> str:
    shown = "\n".join(str(d) for d in found[:60])
    return f"{len(found)} differences in {total} queries:\n{shown}"


def test_udp_answers_match_nsd(servers: tuple[Address, Address]) -> None:
    queries = udp_queries(random.Random(SEED))
    found = differences(servers, queries)
    assert not found, report(found, len(queries))


def test_tcp_answers_match_nsd(servers: tuple[Address, Address]) -> None:
    rng = random.Random(SEED)
    queries = tcp_queries(rng, udp_queries(rng))
    found = differences(servers, queries)
    assert not found, report(found, len(queries))


def test_chaos_identification_matches_nsd(servers: tuple[Address, Address]) -> None:
    rng = random.Random(SEED)
    queries = [
        Query(scramble(name, rng), qtype, payload, do, cookie, False, qclass="CH")
        for name in ("version.bind.", "version.server.", "id.server.", "hostname.bind.", "authors.bind.", "diff.test.")
        for qtype in ("TXT", "ANY", "A")
        for payload, do, cookie in EDNS_VARIANTS[:3]
    ]
    found = differences(servers, queries)
    assert not found, report(found, len(queries))
