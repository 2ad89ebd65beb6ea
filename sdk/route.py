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
import dns.rcode

from codec.edns_text import TEXT_OPTION, QueryForm, query_form
from codec.errors import CodecError
from codec.qname import Form
from sdk.errors import BadQuestion, NoRoute, ServerFailure
from sdk.message import AAAA, CNAME, SRV, TXT, UDP_PAYLOAD, A, Query, Record, Reply, Srv, Txt, find, labels_of

DEFAULT_ZONE = "semantic.root."
ENGINES = "_llm._tcp"


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


def form_query(form: QueryForm, which: Form, rdtype: int) -> Query:
    """The query for one form's name (with the text option when the form is the EDNS one)."""
    options = ((TEXT_OPTION, form.option),) if form.option is not None else ()
    return Query(form.name(which), rdtype, options)


def question_query(text: str, zone: str = DEFAULT_ZONE, rdtype: int = SRV) -> Query:
    """The query asking for the route of `text` (EDNS form when the text is too long for a name)."""
    return form_query(question_form(text, zone), "q", rdtype)


def explain_query(form: QueryForm) -> Query:
    """The `explain` TXT query of a question (same form, same option as its `q` query)."""
    return form_query(form, "explain", TXT)


def needs_tcp(wire: bytes) -> bool:
    """True for a query longer than the UDP payload we advertise (DNS flag day 2020: no fragments)."""
    return len(wire) > UDP_PAYLOAD


def check_reply(reply: Reply, what: str, server: str) -> None:
    """Raise the typed error for a failed reply."""
    rcode = reply.rcode
    if rcode == dns.rcode.NOERROR:
        return
    ede = "; ".join(_ede_text(data) for code, data in reply.options if code == dns.edns.OptionType.EDE)
    detail = f" ({ede})" if ede else ""
    if rcode == dns.rcode.NXDOMAIN:
        raise NoRoute(f"{what}: {server} says the name does not exist{detail}; check the zone you ask under")
    status = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    raise ServerFailure(
        f"{what}: {server} answered {status}{detail}; check that the hierarchy's "
        "servers are up (`semdns cluster up`) and that this server resolves recursively or hosts every zone"
    )


def _ede_text(data: bytes) -> str:
    """`EDE <info-code>: <extra text>` of an Extended DNS Error option (RFC 8914)."""
    code = int.from_bytes(data[:2], "big")
    text = data[2:].decode("utf-8", "replace").rstrip("\x00")
    return f"EDE {code}: {text}".strip()


def chain_path(answer: Sequence[Record], asked_zone: str) -> tuple[tuple[str, ...], str, int]:
    """(zones passed, engines' domain, least TTL) from the answer's CNAME chain."""
    path = [asked_zone.lower()]
    domain = asked_zone.lower()
    ttl = min((rr.ttl for rr in answer), default=0)
    for rr in answer:
        if rr.rdtype != CNAME:
            continue
        labels = labels_of(str(rr.data))
        if "q" in labels:
            zone = ".".join(labels[labels.index("q") + 1 :]) + "."
        elif labels[:2] == ["_llm", "_tcp"]:
            zone = ".".join(labels[2:]) + "."
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


def txt_attributes(records: Sequence[Record]) -> dict[str, str]:
    """DNS-SD `key=value` strings of TXT records (keys lowercased; a bare key maps to "")."""
    attributes: dict[str, str] = {}
    for raw in (string for rr in records if isinstance(rr.data, Txt) for string in rr.data.strings):
        text = raw.decode("utf-8", "replace")
        key, _, value = text.partition("=")
        attributes.setdefault(key.strip().lower(), value.strip())
    return attributes


def explain_hops(reply: Reply) -> list[dict[str, str]]:
    """The explain TXT records, one routing step each, ordered by their `hop=<n>` key."""
    hops = [txt_attributes((rr,)) for rr in reply.answer if rr.rdtype == TXT]

    def number(hop: dict[str, str]) -> int:
        try:
            return int(hop.get("hop", "0"))
        except ValueError:
            return 0

    return sorted(hops, key=number)


def srv_records(reply: Reply) -> list[Srv]:
    """The SRV records at the end of the answer's chain (the engines)."""
    return [rr.data for rr in reply.answer if rr.rdtype == SRV and isinstance(rr.data, Srv)]


def route_from(
    text: str,
    query: Query,
    reply: Reply,
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
    srv = srv_records(reply)
    if not srv:
        raise NoRoute(
            f"{query.name}: the answer lists no engines (no SRV at the end of the chain); "
            "the zone may lack `_llm._tcp` records"
        )
    path, domain, ttl = chain_path(reply.answer, zone)
    records = [(rd.priority, rd.weight, rd.port, rd.target) for rd in srv]
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
        text=text, qname=query.name, path=path, domain=domain,
        stage=explain.get("stage"), confidence=conf_value, ttl=ttl, engines=engines,
        hops=tuple(dict(h) for h in hops),
    )


def srv_targets_missing(reply: Reply) -> list[str]:
    """SRV targets with no A/AAAA in the additional section (they need their own query)."""
    return [rd.target for rd in srv_records(reply)
            if not find(reply.additional, rd.target, A) and not find(reply.additional, rd.target, AAAA)]


def additional_addresses(reply: Reply) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for rr in reply.additional:
        if rr.rdtype in (A, AAAA):
            found.setdefault(rr.name, []).append(str(rr.data))
    return {k: tuple(v) for k, v in found.items()}


def engines_name(reply: Reply) -> str | None:
    """The owner of the SRV RRset (`_llm._tcp.<domain>.`), for its TXT attributes."""
    return next((rr.name for rr in reply.answer if rr.rdtype == SRV), None)
