"""The SDK's sans-IO core: build the queries of a resolution, read the answers into a `Route`.

No sockets, no HTTP: `Client` and `AsyncClient` (`sdk/client.py`) move the bytes.

- `question_form(text, zone)`: how a question travels, decided once for both of its queries: the
  QNAME form when its `q` and `explain` names both fit 255 octets, else the EDNS form (hashed
  QNAME + text option 65001); `question_query` / `explain_query` build the SRV and TXT queries;
- `route_from(...)`: the CNAME chain -> domain path; the SRV RRset -> `Engine`s ordered per
  RFC 2782 (priority ascending, weighted random within a priority, seeded RNG for tests); the
  DNS-SD TXT attributes; stage/confidence from the last step of the `explain` TXT records (one
  record per routing step, `hop=<n>` `stage=` `confidence=` ... strings);
- `check_reply(reply, what)`: the rcode as a typed exception with advice.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from codec.edns_text import TEXT_OPTION, QueryForm, query_form
from codec.errors import CodecError
from codec.qname import Form
from sdk.errors import BadQuestion, NoRoute, ServerFailure

DEFAULT_ZONE = "semantic.root."
ENGINES = "_llm._tcp"
UDP_PAYLOAD = 1232
MAX_MESSAGE = 65535


@dataclass(frozen=True)
class Engine:
    """One engine of a route: an SRV target with its address and DNS-SD attributes."""

    target: str
    port: int
    priority: int
    weight: int
    addresses: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """`http://ADDRESS:PORT/v1` (the `path` attribute, default /v1)."""
        host = self.addresses[0] if self.addresses else self.target.rstrip(".")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.attributes.get('path', '/v1')}"

    @property
    def model(self) -> str | None:
        return self.attributes.get("model")


@dataclass(frozen=True)
class Route:
    """Where a question goes: the zones it passed, how it was decided, and the engines in order."""

    text: str
    qname: str
    path: tuple[str, ...]  # zones from the one asked down to the engines' domain
    domain: str  # the zone whose engines serve the question
    stage: str | None  # the classification stage that decided (from `explain`), if known
    confidence: float | None
    ttl: int  # seconds the route may be cached (the least TTL along the chain)
    engines: tuple[Engine, ...]
    hops: tuple[Mapping[str, str], ...] = ()  # the explain form's routing steps, first to last

    @property
    def explain(self) -> Mapping[str, str]:
        """The last routing step (the decision that chose the engines' domain)."""
        return self.hops[-1] if self.hops else {}


def question_form(text: str, zone: str = DEFAULT_ZONE) -> QueryForm:
    """The names (and text option) of `text` under `zone`: the QNAME form when both its `q` and
    `explain` names fit 255 octets, else the EDNS form (`codec.edns_text.query_form`).

    Raises `BadQuestion` for text no form can carry (empty, invalid Unicode, over a size bound of
    `codec.text`: what a server would refuse)."""
    try:
        return query_form(text, zone)
    except CodecError as exc:
        raise BadQuestion(f"cannot send the question {text[:60]!r} under {zone!r}: {exc}") from None


def form_query(form: QueryForm, which: Form, rdtype: int) -> dns.message.Message:
    """The query for one form's name (with the text option when the form is the EDNS one)."""
    options: tuple[dns.edns.Option, ...] = ()
    if form.option is not None:
        options = (dns.edns.GenericOption(dns.edns.OptionType.make(TEXT_OPTION), form.option),)
    return make_query(form.name(which), rdtype, options)


def question_query(text: str, zone: str = DEFAULT_ZONE, rdtype: int = dns.rdatatype.SRV) -> dns.message.Message:
    """The query asking for the route of `text` (EDNS form when the text is too long for a name)."""
    return form_query(question_form(text, zone), "q", rdtype)


def explain_query(form: QueryForm) -> dns.message.Message:
    """The `explain` TXT query of a question (same form, same option as its `q` query)."""
    return form_query(form, "explain", dns.rdatatype.TXT)


def make_query(
    name: str | dns.name.Name, rdtype: int, options: Sequence[dns.edns.Option] = ()
) -> dns.message.Message:
    """A recursive query advertising a UDP payload of 1232 octets; the query itself may be as large
    as a DNS message (the text option carries up to 65,000 octets) and then goes over TCP."""
    query = dns.message.make_query(name, dns.rdatatype.RdataType.make(rdtype), use_edns=0, payload=UDP_PAYLOAD,
                                   request_payload=MAX_MESSAGE, options=list(options))
    query.flags |= dns.flags.RD
    return query


def needs_tcp(query: dns.message.Message) -> bool:
    """True for a query longer than the UDP payload we advertise (DNS flag day 2020: no fragments)."""
    return len(query.to_wire()) > UDP_PAYLOAD


def check_reply(reply: dns.message.Message, what: str, server: str) -> None:
    """Raise the typed error for a failed reply."""
    rcode = reply.rcode()
    if rcode == dns.rcode.NOERROR:
        return
    ede = "; ".join(
        f"EDE {o.code}: {o.text or ''}".strip() for o in reply.options if o.otype == dns.edns.OptionType.EDE
    )
    detail = f" ({ede})" if ede else ""
    if rcode == dns.rcode.NXDOMAIN:
        raise NoRoute(f"{what}: {server} says the name does not exist{detail}; check the zone you ask under")
    raise ServerFailure(
        f"{what}: {server} answered {dns.rcode.to_text(rcode)}{detail}; check that the hierarchy's "
        "servers are up (`semdns cluster up`) and that this server resolves recursively or hosts every zone"
    )


def chain_path(answer: Sequence[dns.rrset.RRset], asked_zone: str) -> tuple[tuple[str, ...], str, int]:
    """(zones passed, engines' domain, least TTL) from the answer's CNAME chain."""
    path = [asked_zone.lower()]
    domain = asked_zone.lower()
    ttl = min((rr.ttl for rr in answer), default=0)
    for rr in answer:
        if rr.rdtype != dns.rdatatype.CNAME:
            continue
        target = rr[0].target
        labels = [label.lower() for label in target.labels]
        if b"q" in labels:
            zone = dns.name.Name(target.labels[labels.index(b"q") + 1 :]).to_text().lower()
        elif labels[:2] == [b"_llm", b"_tcp"]:
            zone = dns.name.Name(target.labels[2:]).to_text().lower()
        else:
            continue
        if zone != path[-1]:
            path.append(zone)
        domain = zone
    return tuple(path), domain, ttl


def order_srv(records: Sequence[tuple[int, int, int, str]], rng: random.Random) -> list[tuple[int, int, int, str]]:
    """RFC 2782 order of (priority, weight, port, target): lowest priority first; within a
    priority, repeatedly pick at random with probability proportional to weight (weight-0
    records first in the running sum, so they are chosen only when the sum draws 0)."""
    ordered: list[tuple[int, int, int, str]] = []
    for priority in sorted({r[0] for r in records}):
        pool = sorted((r for r in records if r[0] == priority), key=lambda r: r[1] != 0)
        while pool:
            total = sum(r[1] for r in pool)
            draw = rng.randint(0, total)
            running = 0
            for index, record in enumerate(pool):
                running += record[1]
                if running >= draw:
                    ordered.append(pool.pop(index))
                    break
    return ordered


def txt_attributes(rrset: dns.rrset.RRset | None) -> dict[str, str]:
    """DNS-SD `key=value` strings of a TXT RRset (keys lowercased; a bare key maps to "")."""
    attributes: dict[str, str] = {}
    if rrset is None:
        return attributes
    for rd in rrset:
        for raw in rd.strings:
            text = raw.decode("utf-8", "replace")
            key, _, value = text.partition("=")
            attributes.setdefault(key.strip().lower(), value.strip())
    return attributes


def explain_hops(reply: dns.message.Message) -> list[dict[str, str]]:
    """The explain TXT records, one routing step each, ordered by their `hop=<n>` key."""
    hops = [txt_attributes(dns.rrset.from_rdata(rr.name, rr.ttl, rd))
            for rr in reply.answer if rr.rdtype == dns.rdatatype.TXT for rd in rr]

    def number(hop: dict[str, str]) -> int:
        try:
            return int(hop.get("hop", "0"))
        except ValueError:
            return 0

    return sorted(hops, key=number)


def find(section: Sequence[dns.rrset.RRset], name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    return next((rr for rr in section if rr.name == name and rr.rdtype == rdtype), None)


def route_from(
    text: str,
    query: dns.message.Message,
    reply: dns.message.Message,
    zone: str,
    rng: random.Random,
    attributes: Mapping[str, str],
    addresses: Mapping[str, tuple[str, ...]],
    hops: Sequence[Mapping[str, str]],
    instances: Mapping[str, Mapping[str, str]] | None = None,
) -> Route:
    """Assemble a `Route` from the SRV reply and what was looked up beside it.

    `instances` maps SRV targets to their own DNS-SD attributes (registered engines); other
    targets take the service's `attributes`."""
    srv = next((rr for rr in reply.answer if rr.rdtype == dns.rdatatype.SRV), None)
    if srv is None:
        raise NoRoute(
            f"{query.question[0].name}: the answer lists no engines (no SRV at the end of the chain); "
            "the zone may lack `_llm._tcp` records"
        )
    path, domain, ttl = chain_path(reply.answer, zone)
    records = [(rd.priority, rd.weight, rd.port, rd.target.to_text()) for rd in srv]
    engines = tuple(
        Engine(target, port, priority, weight, addresses.get(target, ()),
               dict((instances or {}).get(target, attributes)))
        for priority, weight, port, target in order_srv(records, rng)
    )
    explain = hops[-1] if hops else {}
    confidence = explain.get("confidence") or explain.get("conf")
    try:
        conf_value = float(confidence) if confidence is not None else None
    except ValueError:
        conf_value = None
    return Route(
        text=text, qname=query.question[0].name.to_text(), path=path, domain=domain,
        stage=explain.get("stage"), confidence=conf_value, ttl=ttl, engines=engines,
        hops=tuple(dict(h) for h in hops),
    )


def srv_targets_missing(reply: dns.message.Message) -> list[dns.name.Name]:
    """SRV targets with no A/AAAA in the additional section (they need their own query)."""
    srv = next((rr for rr in reply.answer if rr.rdtype == dns.rdatatype.SRV), None)
    if srv is None:
        return []
    return [
        rd.target for rd in srv
        if find(reply.additional, rd.target, dns.rdatatype.A) is None
        and find(reply.additional, rd.target, dns.rdatatype.AAAA) is None
    ]


def additional_addresses(reply: dns.message.Message) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for rr in reply.additional:
        if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found.setdefault(rr.name.to_text(), []).extend(rd.address for rd in rr)
    return {k: tuple(v) for k, v in found.items()}


def engines_name(reply: dns.message.Message) -> dns.name.Name | None:
    """The owner of the SRV RRset (`_llm._tcp.<domain>.`), for its TXT attributes."""
    srv = next((rr for rr in reply.answer if rr.rdtype == dns.rdatatype.SRV), None)
    return srv.name if srv is not None else None
