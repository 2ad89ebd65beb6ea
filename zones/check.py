"""Validation of a loaded zone: what `semdns zone check` and the server's start-up refuse.

`check_zone(loaded)` returns `ZoneProblem`s located at the `file:line` that defined the data:
- the apex has exactly one SOA and an NS RRset;
- name servers inside the zone (of the apex and of delegations) have addresses (glue below a
  cut); nothing but glue lives below a delegation point, nothing but NS/DS at one;
- routing profiles (`_route` TXT, parsed by `zones.profile`) follow semroute1, with a `desc`;
- routing heads (`_head._route` TXT, and fast heads at `_fast._head._route`, `zones.head`) follow
  semhead1: chunks, size and sha256 agree (a fast head has its `decide=`),
  `dims` is the encoder's, every class is a child of the node with a profile (a child the head
  does not know is a warning: only its keywords and exemplars can reach it);
- `_llm._tcp` engines have SRV records whose in-zone targets have addresses, and DNS-SD TXT;
- a pattern library's header (`_codec.<origin>` TXT) is within the bounds readers accept
  (`codec.library.check_header`: at most 16 chunks and 128 KiB) and its chunks are all there;
- the SOA serial looks like YYYYMMDDNN (warning) and the timers are sensible (warnings).
CNAME beside other data and an SOA away from the apex are refused by the loader itself (dnspython
cannot represent them in a zone): they come back as `ZoneFileError` with their file:line.
Serial regressions are checked by `zones.reload`, the only place where an old serial exists.
"""
from __future__ import annotations

import datetime
from typing import Iterator

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.zone

from codec.library import check_header, chunk_owner, header_owner
from zones.errors import Severity, ZoneProblem
from zones.head import ENCODER_DIMS, HeadError, find_head_nodes, head_owner, parse_head
from zones.profile import ProfileSyntaxError, find_route_nodes, parse_profiles
from zones.source import LoadedZone, Location

A, AAAA, NS, SOA, SRV, TXT, DS = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.NS,
    dns.rdatatype.SOA,
    dns.rdatatype.SRV,
    dns.rdatatype.TXT,
    dns.rdatatype.DS,
)
ADDRESS_TYPES = (A, AAAA)
# Types that may sit at a delegation point (the parent side of the cut).
CUT_TYPES = frozenset({NS, DS, dns.rdatatype.NSEC, dns.rdatatype.RRSIG, dns.rdatatype.NSEC3})
LLM_SERVICE = (b"_llm", b"_tcp")


def _problem(loc: Location, message: str, severity: Severity = "error") -> ZoneProblem:
    return ZoneProblem(loc.file, loc.line, message, severity)


def check_zone(loaded: LoadedZone) -> list[ZoneProblem]:
    """Every problem found in `loaded`, in file order (errors and warnings)."""
    problems: list[ZoneProblem] = []
    for check in (
        _check_reader_notes,
        _check_apex,
        _check_delegations,
        _check_profiles,
        _check_heads,
        _check_engines,
        _check_library,
    ):
        problems.extend(check(loaded))
    return sorted(problems, key=lambda p: (p.file, p.line, p.message))


def has_errors(problems: list[ZoneProblem]) -> bool:
    return any(p.is_error for p in problems)


def _check_reader_notes(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    for name, rdtype, loc in loaded.repeated_singletons:
        kind = dns.rdatatype.to_text(rdtype)
        yield _problem(loc, f"{name}: a second {kind} record (only one is allowed; this one replaced the first)")
    for name, loc in loaded.out_of_zone.items():
        yield _problem(loc, f"{name} is outside the zone {loaded.origin}: ignored", "warning")


def _check_apex(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    zone, origin = loaded.zone, loaded.origin
    soa = zone.get_rdataset(origin, SOA)
    if soa is None:
        yield _problem(loaded.where(), f"zone {origin} has no SOA record at its apex")
    else:
        yield from _check_soa(loaded, soa[0])
    ns = zone.get_rdataset(origin, NS)
    if ns is None:
        loc = loaded.where(origin, SOA) if soa is not None else loaded.where()
        yield _problem(loc, f"zone {origin} has no NS records at its apex")
    else:
        yield from _check_ns_addresses(loaded, origin, ns)


def _check_soa(loaded: LoadedZone, soa: dns.rdtypes.ANY.SOA.SOA) -> Iterator[ZoneProblem]:
    loc = loaded.where(loaded.origin, SOA)
    if not is_date_serial(soa.serial):
        yield _problem(loc, f"serial {soa.serial} is not of the form YYYYMMDDNN", "warning")
    if soa.retry >= soa.refresh:
        yield _problem(loc, f"SOA retry ({soa.retry}) should be shorter than refresh ({soa.refresh})", "warning")
    if soa.expire <= soa.refresh + soa.retry:
        yield _problem(loc, f"SOA expire ({soa.expire}) should exceed refresh + retry", "warning")
    if soa.minimum > 86400:
        yield _problem(loc, f"SOA negative TTL ({soa.minimum}) is over a day (RFC 2308: 1-3 hours)", "warning")


def is_date_serial(serial: int) -> bool:
    """True for a YYYYMMDDNN serial with a real calendar date."""
    text = str(serial)
    if len(text) != 10:
        return False
    try:
        datetime.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _delegation_points(zone: dns.zone.Zone) -> list[dns.name.Name]:
    origin = zone.origin
    return sorted(
        name
        for name, node in zone.nodes.items()
        if name != origin and node.get_rdataset(dns.rdataclass.IN, NS) is not None
    )


def _enclosing_cut(name: dns.name.Name, cuts: list[dns.name.Name]) -> dns.name.Name | None:
    """The delegation point at or above `name`, if any."""
    for cut in cuts:
        if name.is_subdomain(cut):
            return cut
    return None


def _check_ns_addresses(
    loaded: LoadedZone, owner: dns.name.Name, ns: dns.rdataset.Rdataset
) -> Iterator[ZoneProblem]:
    """In-zone name servers of `owner` need A/AAAA in this zone (glue when below a cut)."""
    zone, origin = loaded.zone, loaded.origin
    for rdata in ns:
        target = rdata.target
        if not target.is_subdomain(origin):
            continue  # out of zone: resolvable elsewhere
        if any(zone.get_rdataset(target, t) is not None for t in ADDRESS_TYPES):
            continue
        kind = "glue (A/AAAA)" if owner != origin else "an address (A/AAAA)"
        yield _problem(
            loaded.where(owner, NS, rdata),
            f"{owner}: name server {target} is inside the zone but has no {kind}",
        )


def _check_delegations(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    zone = loaded.zone
    cuts = _delegation_points(zone)
    glue_names: set[dns.name.Name] = set()
    for cut in cuts:
        ns = zone.find_rdataset(cut, NS)
        glue_names.update(rdata.target for rdata in ns)
        yield from _check_ns_addresses(loaded, cut, ns)
    for name, node in zone.nodes.items():
        enclosing = _enclosing_cut(name, cuts)
        if enclosing is None:
            continue
        for rdataset in node:
            rdtype = rdataset.rdtype
            kind = dns.rdatatype.to_text(rdtype)
            if name == enclosing:
                if rdtype not in CUT_TYPES:
                    yield _problem(
                        loaded.where(name, rdtype),
                        f"{name}: {kind} at a delegation point (only NS/DS belong on the parent side)",
                    )
            elif rdtype not in ADDRESS_TYPES:
                yield _problem(
                    loaded.where(name, rdtype),
                    f"{name}: {kind} below the delegation point {enclosing} (only glue may be there)",
                )
            elif name not in glue_names:
                yield _problem(
                    loaded.where(name, rdtype),
                    f"{name}: address below the delegation point {cut} that no NS uses (stray glue)",
                    "warning",
                )


def _check_profiles(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    zone = loaded.zone
    try:
        nodes = find_route_nodes(zone)
    except ProfileSyntaxError as exc:
        yield _profile_problem(loaded, exc)
        return
    cuts = _delegation_points(zone)
    for node in nodes:
        try:
            table = parse_profiles(zone, node)
        except ProfileSyntaxError as exc:
            yield _profile_problem(loaded, exc)
            continue
        for profile in table.profiles:
            owner = dns.name.Name(profile.child.labels[:1] + (b"_route",) + node.labels)
            loc = loaded.where(owner, TXT)
            if not profile.description:
                yield _problem(loc, f"{owner}: routing profile without desc=")
            if profile.child not in cuts and not any(
                name.is_subdomain(profile.child) for name in zone.nodes
            ):
                yield _problem(
                    loc,
                    f"{owner}: profile for {profile.child}, which is neither delegated nor hosted here",
                    "warning",
                )


def _check_heads(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    """Every head and fast head of the zone (`zones.head`), each problem at its record's line."""
    zone = loaded.zone
    for fast, node in [(fast, node) for fast in (False, True) for node in find_head_nodes(zone, fast)]:
        owner = head_owner(node, fast)
        try:
            head = parse_head(zone, node, fast)
        except HeadError as exc:
            try:
                at = dns.name.from_text(exc.owner)
            except dns.exception.DNSException:
                at = owner
            loc = loaded.where(at, TXT)
            yield _problem(loc if loc.line else loaded.where(owner, TXT), f"routing head {exc}")
            continue
        if head is None:
            continue
        loc = loaded.where(owner, TXT)
        if head.dims != ENCODER_DIMS:
            yield _problem(loc, f"{owner}: dims={head.dims}, but the encoder's vectors have {ENCODER_DIMS}")
        try:
            children = [p.child.labels[0].decode() for p in parse_profiles(zone, node).profiles]
        except ProfileSyntaxError:
            continue  # reported by _check_profiles
        if not children:
            yield _problem(loc, f"{owner}: a head for {node}, which has no child profiles")
            continue
        unknown = [c for c in head.classes if c not in children]
        if unknown:
            yield _problem(loc, f"{owner}: classes {', '.join(unknown)} are not children of {node} "
                                f"(children: {', '.join(children)}): ignored until `semdns routes train` "
                                "writes the head again", "warning")
        unseen = [c for c in children if c not in head.classes]
        if unseen:
            which = "fast head" if fast else "head"
            yield _problem(loc, f"{owner}: the {which} has no class for {', '.join(unseen)} "
                                "(only keywords and exemplars reach it)", "warning")


def _profile_problem(loaded: LoadedZone, exc: ProfileSyntaxError) -> ZoneProblem:
    try:
        owner = dns.name.from_text(exc.owner)
    except dns.exception.DNSException:
        return _problem(loaded.where(), str(exc))
    return _problem(loaded.where(owner, TXT), f"routing profile {exc}")


def _is_llm_service(name: dns.name.Name) -> bool:
    return tuple(label.lower() for label in name.labels[:2]) == LLM_SERVICE


def _check_engines(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    zone, origin = loaded.zone, loaded.origin
    for name in sorted(n for n in zone.nodes if _is_llm_service(n)):
        srv = zone.get_rdataset(name, SRV)
        if srv is None:
            # a warning: the health monitor leaves exactly this (every registered engine hidden) in the
            # zone our secondaries transfer, and the semantic answers fall back to an ancestor's engines
            yield _problem(loaded.where(name), f"{name}: engine service without SRV records "
                                               "(its questions fall back to an ancestor's engines)", "warning")
        else:
            for rdata in srv:
                loc = loaded.where(name, SRV, rdata)
                if rdata.target == dns.name.root:
                    yield _problem(loc, f"{name}: SRV target '.' (service explicitly unavailable)", "warning")
                    continue
                if rdata.port == 0:
                    yield _problem(loc, f"{name}: SRV port 0")
                target = rdata.target
                if target.is_subdomain(origin) and not any(
                    zone.get_rdataset(target, t) is not None for t in ADDRESS_TYPES
                ):
                    yield _problem(loc, f"{name}: SRV target {target} is in the zone but has no A/AAAA")
        txt = zone.get_rdataset(name, TXT)
        if txt is None:
            yield _problem(loaded.where(name), f"{name}: engine service without DNS-SD TXT attributes", "warning")
            continue
        for rdata in txt:
            for raw in rdata.strings:
                if raw.startswith(b"="):
                    yield _problem(
                        loaded.where(name, TXT, rdata),
                        f"{name}: DNS-SD TXT string {raw[:40]!r} has no key (RFC 6763 §6.4)",
                    )


def _check_library(loaded: LoadedZone) -> Iterator[ZoneProblem]:
    """The `_codec` header as the SDK will read it: in bounds, and every chunk it announces present."""
    zone, origin = loaded.zone, loaded.origin
    owner = dns.name.from_text(header_owner(origin.to_text()))
    header = zone.get_rdataset(owner, TXT)
    if header is None:
        return
    for rdata in header:
        problems = check_header(rdata.strings)
        for message in problems:
            yield _problem(loaded.where(owner, TXT, rdata), f"{owner}: {message}")
        if problems:
            continue
        count = next(int(raw[len(b"chunks="):]) for raw in rdata.strings if raw.startswith(b"chunks="))
        for index in range(count):
            if zone.get_rdataset(dns.name.from_text(chunk_owner(origin.to_text(), index)), TXT) is None:
                yield _problem(loaded.where(owner, TXT, rdata), f"{owner}: chunk {index} of {count} is missing")
