"""Semantic resolution (ARCHITECTURE §2-3): `<text>.q.<node>` -> a CNAME chain down the hierarchy.

The chain handler in the `semantic` slot. For a QNAME whose leftmost `q` or `explain` label sits
under a node this server hosts, it decodes the text (`codec`), classifies it with the node's
compiled routing index (`routing.classifier`, stages keyword -> embed -> deep), and answers:

- `q` form, QTYPE SRV, TXT or CNAME: `CNAME <same text labels>.q.<child>.` with the TTL of the
  deciding zone's `route-ttl`; where this server hosts the child too, the chain continues in the
  same response, down to `CNAME _llm._tcp.<last node>.` and that name's SRV (targets' A/AAAA in
  the additional section) or TXT records. A node where no child fits, or a leaf without routing
  profiles, answers `CNAME _llm._tcp.<node>.` (its general engine). A CNAME query gets only the
  first CNAME. When the text labels do not fit a name under a deeper child, the chain switches
  to the hashed form `h-<hash>.q.<child>.` (fine where this server continues the chain; a
  delegated child's server then needs the EDNS text option). Where the child is delegated to
  another server, the chain stops at the CNAME into the child's `q` namespace and the resolver
  follows it (meeting the referral). The CNAMEs are built as wire bytes (`request.Alias`).
- fallback: where the chain would end at a name with no SRV records in the served zone (no
  engine configured, or every registered one hidden by the health monitor), the last CNAME goes
  instead to `_llm._tcp.<ancestor>.` of the nearest ancestor hosted here that has SRV records
  (the parent's general engine; `routing.descend.general_engine`), with a TTL no longer than the
  negative TTL of the zone that lacks them (RFC 2308: the fallback rests on an absence), and an
  Extended DNS Error 0 saying so. Where no level has engines, the chain still ends at the
  node's own (empty) `_llm._tcp`.
- `explain` form, QTYPE TXT: one TXT record per routing step, every string `key=value`:
  `hop=<n>` `node=<name>` `stage=keyword|fast|exemplar|head|embed|deep|none|shed` `confidence=<0..1>`
  `choice=<child>|general` `runner-up=<child>:<score>` `candidates=<label>:<score>,...`
  (every child, best first: cross-domain questions show all their candidates); a head that was not
  confident enough adds `stopped=confidence <p> < <th.head>` (then `choice=general`); the last record
  adds `fallback=_llm._tcp.<ancestor>.` when the answer falls back as above, a shed step adds
  `shed=queue-full|deadline` (and says `stage=shed`); the TTL is the shortest of the steps'.
  A question's `q` and `explain` queries share one walk (`walks.WalkMemo`: the one under way, or
  one finished within 2 s, for the same text, node, catalog and client embedding option).
- admission (`EmbedBatcher`): a question waits for the encoder at most `encoder_deadline`
  seconds in all, and finds at most `encoder_queue` texts ahead of it. A step the encoder cannot
  serve (queue full, deadline passed) is shed: decided by the keyword stage's best child when a
  keyword matched, else the walk stops there and the node's general engine answers (with the
  fallback above when it has none); an EDE 0 per shed step says so, its CNAMEs carry a TTL of at
  most `routing.descend.SHED_TTL` and the wire cache does not keep the answer.
- a `q` or `explain` label under a node with neither routing profiles nor `_llm._tcp` names here,
  and that no parent's profiles route to (a child our CNAMEs may point into stays semantic even
  when it holds no record: the nearest ancestor's engines answer), is no semantic name: it goes on
  to the authority like any other name (wildcards, CNAMEs,
  NXDOMAIN as RFC 1034 has them; a plain zone may use the label `q` for its own data).
- any other QTYPE (A, AAAA, NS, ...) under `q`/`explain`, and `q.<node>` itself: NOERROR with no
  data (these names are empty non-terminals for QNAME minimisation, RFC 9156; never NXDOMAIN,
  never a CNAME that would route on half a question).

The EDNS form: `h-<hash>.q.<node>` with the text in EDNS option 65001 (`codec.edns_text`); an
embedding in option 65002 from the same encoder (model tag of `routing.embedder.MODEL_NAME`) skips the
encoder. Classification always runs inline on the event loop, the fast heads' token encoder too
(`routing.tokens`: a table lookup, no model); the model runs only in `EmbedBatcher` (one
onnxruntime run for concurrent questions): the question's vector when neither keywords nor a
fast head decide, its sentences' vectors when a step needs the deep stage.

Bad input (each answer is authoritative, with the zone's SOA in the authority section where it
is negative, and an Extended DNS Error, RFC 8914, saying why):

| input                                              | RCODE      | EDE                |
|----------------------------------------------------|------------|--------------------|
| label > 63 or name > 255 octets (cannot be parsed) | FORMERR    | (none: rejected before the chain) |
| text labels the codec cannot decode (bad escape)   | NXDOMAIN   | 24 Invalid Data    |
| hashed name without the text option (SRV/TXT)      | FORMERR    | 24 Invalid Data    |
| text option: invalid UTF-8, unknown flag, damaged  | FORMERR    | 24 Invalid Data    |
| text option: empty after normalisation             | FORMERR    | 24 Invalid Data    |
| text option: > 65,000 octets, or > 65,000 code points once decomposed (NFKD) | FORMERR | 24 Invalid Data |
| text option does not match the `h-<hash>` label     | FORMERR    | 24 Invalid Data    |
| text of only punctuation/symbols (no letter/digit) | NOERROR, CNAME to the node's general engine | 0 Other |
| embedding option from another encoder or damaged   | ignored (the text is embedded here)   | none |
| embedding of other than 384 values, NaN/inf, not unit length | ignored (the text is embedded here) | none |

A client's valid embedding routes that one answer only (`_embedding`): no shared state learns from
it, and the wire cache, keyed on the whole query after the ID, keeps the answer for queries that
carry the very same option bytes.
Text too long for a QNAME is the EDNS form's job (the codec raises before a name is built).
"""
from __future__ import annotations

import asyncio
import functools

import dns.edns
import dns.flags
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.zone
import numpy as np

from codec import CodecError, SemanticName, parse_semantic_name
from codec.edns_text import (
    EMBEDDING_OPTION,
    TEXT_OPTION,
    decode_embedding_option,
    decode_text_option,
    hashed_qname,
    model_tag,
    text_hash_label,
)
from common.names import name_key, name_wire, zone_origin
from nameserver.config import DEFAULT_ENCODER_DEADLINE, DEFAULT_ENCODER_QUEUE
from nameserver.errors import Refusal
from nameserver.request import Alias, Next, Reply, Request, Response, Texts
from nameserver.semantic.batcher import EmbedBatcher
from nameserver.semantic.walks import WalkMemo, walk_key
from nameserver.vectors import usable
from nameserver.wire import labels_to_wire
from routing.classifier import Classifier, TokenVectors
from routing.descend import Hop, descend_steps, engine_service, general_engine, hosting_zone, route_index
from routing.embedder import MODEL_NAME
from routing.errors import Shed
from routing.index import Encoder, IndexCache
from zones.catalog import ZoneCatalog, ZoneStore
from zones.profile import RouteSettings, find_route_nodes

ROUTE_QTYPES = frozenset({dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.CNAME})
EXPLAIN_QTYPES = frozenset({dns.rdatatype.TXT})
FORM_LABELS = (b"q", b"explain")
FORM_WIRE = {"q": b"\x01q", "explain": b"\x07explain"}
MAX_NAME_OCTETS = 255
DEFAULT_ROUTE_TTL = RouteSettings().route_ttl


def _form_index(qname: dns.name.Name) -> int | None:
    for i, label in enumerate(qname.labels):
        if label.lower() in FORM_LABELS:
            return i
    return None


class SemanticHandler:
    """The `semantic` slot of the chain (see the module docstring)."""

    name = "semantic"
    inline = True  # awaits only futures (executor, batcher): no task needed before it suspends

    def __init__(self, store: ZoneStore, encoder: Encoder, encoder_queue: int = DEFAULT_ENCODER_QUEUE,
                 encoder_deadline: float = DEFAULT_ENCODER_DEADLINE, tokens: TokenVectors | None = None) -> None:
        self.store = store
        self.encoder = encoder
        self.encoder_queue = encoder_queue  # texts waiting for the encoder at most (`EmbedBatcher`)
        self.encoder_deadline = encoder_deadline  # seconds one question may wait for the encoder
        self.indexes = IndexCache(encoder, tokens)
        self._classifier = Classifier(tokens)  # with `tokens`, the nodes' fast heads decide inline
        self._batcher: EmbedBatcher | None = None
        self._model_tag = model_tag(MODEL_NAME)
        self.walks = WalkMemo()  # the SRV and the explain of one question share one walk

    def warm(self) -> None:
        """Compile every route node's index for the current catalog (the runner calls this at
        start and after each reload; exemplar vectors are memoised, so only changes cost)."""
        for zone in self.store.current.zones.values():
            for node in find_route_nodes(zone):
                self.indexes.get(zone, node)

    async def serve(self, request: Request, next: Next) -> Response:
        if request.opcode != dns.opcode.QUERY or request.qclass != dns.rdataclass.IN:
            return await next(request)
        qname = request.qname
        at = _form_index(qname)
        if at is None:
            return await next(request)
        node = dns.name.Name(qname.labels[at + 1:])
        catalog = self.store.current
        zone = hosting_zone(catalog, node)
        if zone is None:
            return await next(request)  # not ours, or beyond a cut: authority refers or refuses
        if (route_index(catalog, self.indexes, node) is None and zone.get_node(engine_service(node)) is None
                and not self._routed_to(catalog, node)):
            return await next(request)  # no routing and no engine here: plain DNS names for authority
        try:
            return await self._answer(request, catalog, zone, node, at)
        except Refusal as refusal:
            return Response(reply=Reply.refusing(refusal, *_negative(catalog, zone, refusal.rcode)), cacheable=True)

    def _routed_to(self, catalog: ZoneCatalog, node: dns.name.Name) -> bool:
        """A child its parent's profiles route to: our own CNAMEs point under it, so its `q` names
        stay semantic even when it holds no record (its last engine's lease ended)."""
        if len(node) < 2:
            return False
        parent = route_index(catalog, self.indexes, node.parent())
        return parent is not None and node in parent.children

    async def _answer(self, request: Request, catalog: ZoneCatalog, zone: dns.zone.Zone,
                      node: dns.name.Name, at: int) -> Response:
        index = route_index(catalog, self.indexes, node)
        if at == 0:
            return _no_data(catalog, zone)
        try:
            parsed = parse_semantic_name(request.qname)
        except CodecError as exc:
            raise _invalid(dns.rcode.NXDOMAIN, f"undecodable question: {exc}")
        allowed = ROUTE_QTYPES if parsed.form == "q" else EXPLAIN_QTYPES
        if request.qtype not in allowed:
            return _no_data(catalog, zone)
        text = self._text(request, parsed)
        if index is None:
            hops: tuple[Hop, ...] = ()
        elif not any(ch.isalnum() for ch in text):
            hops = ()
        else:
            key = walk_key(catalog.generation, node, text, request.option(EMBEDDING_OPTION))
            hops = await self.walks.walk(key, lambda: self._route(catalog, text, node, self._embedding(request)))
            request.__dict__["hops"] = hops  # for metrics and the query log (`nameserver.server`)
        end = _chain_end(catalog, node, hops)
        fallback = _fallback(catalog, end)
        aliases: tuple[Alias, ...] = ()
        texts: tuple[Texts, ...] = ()
        answer: tuple[dns.rrset.RRset, ...] = ()
        additional: tuple[dns.rrset.RRset, ...] = ()
        if parsed.form == "explain":
            texts = (self._explain(request.qname_wire, node, hops, fallback),)
        else:
            aliases, answer, additional = self._chain(request, catalog, parsed, text, end, fallback, hops)
        options: list[dns.edns.Option] = []
        if index is not None and not hops:
            options.append(dns.edns.EDEOption(dns.edns.EDECode.OTHER, "the question has no words: general engine"))
        if fallback is not None and end is not None:
            options.append(dns.edns.EDEOption(
                dns.edns.EDECode.OTHER, f"no engine at {engine_service(end)}: fallback to {engine_service(fallback)}"))
        shed = [hop for hop in hops if hop.shed is not None]
        options.extend(dns.edns.EDEOption(dns.edns.EDECode.OTHER, _shed_text(hop)) for hop in shed)
        reply = Reply(dns.rcode.NOERROR, dns.flags.AA, answer=answer, additional=additional,
                      options=tuple(options), aliases=aliases, texts=texts)
        return Response(reply=reply, cacheable=not shed)  # a shed answer is for this moment only

    def _text(self, request: Request, parsed: SemanticName) -> str:
        if not parsed.hashed:
            return parsed.text or ""
        payload = request.option(TEXT_OPTION)
        if payload is None:
            raise _invalid(dns.rcode.FORMERR, f"hashed name needs the text in EDNS option {TEXT_OPTION}")
        try:
            text = decode_text_option(payload)
        except CodecError as exc:
            raise _invalid(dns.rcode.FORMERR, str(exc))
        if text_hash_label(text) != parsed.text_hash:
            raise _invalid(dns.rcode.FORMERR, "the text option does not match the hashed name")
        return text

    def _embedding(self, request: Request) -> np.ndarray | None:
        """The client's vector when it is from our encoder and `nameserver.vectors.usable`, else
        None (the text is embedded here). It decides this one answer only: the wire cache keys
        on the option's bytes too, so the answer never reaches a client that did not send them."""
        payload = request.option(EMBEDDING_OPTION)
        if payload is None:
            return None
        try:
            embedding = decode_embedding_option(payload)
        except CodecError:
            return None
        if embedding.model != self._model_tag:
            return None
        return usable(embedding.vector)

    async def _route(self, catalog: ZoneCatalog, text: str, node: dns.name.Name,
                     vector: np.ndarray | None) -> tuple[Hop, ...]:
        """Classification runs inline on the event loop; the model runs only in the batcher,
        for what a stage asks for: the question's vector when keywords (or a vector from the
        client) do not decide, its sentences' vectors when a step needs the deep stage. All the
        question's encoder waits share one deadline; a step the batcher sheds (queue full,
        deadline passed) gets `Shed` thrown in and is decided by keywords or the general engine."""
        steps = descend_steps(catalog, self.indexes, self._classifier, text, node, vector)
        deadline = asyncio.get_running_loop().time() + self.encoder_deadline
        try:
            request = next(steps)
            while True:
                try:
                    vectors = await self._batching().embed(request.texts, deadline)
                except Shed as shed:
                    request = steps.throw(shed)
                else:
                    request = steps.send(vectors)
        except StopIteration as stop:
            return stop.value

    def _batching(self) -> EmbedBatcher:
        """The batcher of the running loop (made on first use: it needs the loop)."""
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop is not loop:
            self._batcher = EmbedBatcher(self.encoder, max_queue=self.encoder_queue, deadline=self.encoder_deadline)
        return self._batcher

    def _chain(self, request: Request, catalog: ZoneCatalog, parsed: SemanticName, text: str,
               end: dns.name.Name | None, fallback: dns.name.Name | None, hops: tuple[Hop, ...]
               ) -> tuple[tuple[Alias, ...], tuple[dns.rrset.RRset, ...], tuple[dns.rrset.RRset, ...]]:
        """The CNAMEs down to `end` (None: the chain leaves this server), then to the engines of
        `end`, or of `fallback` when `end` has none, and those engines' records: (the CNAMEs,
        the rest of the answer, the additional section). Names are built as wire bytes: this
        is the hot path of every routed question."""
        aliases: list[Alias] = []
        owner = request.qname_wire
        text_wire = labels_to_wire(parsed.labels)
        ttl = hops[0].route_ttl if hops else DEFAULT_ROUTE_TTL
        for hop in hops:
            ttl = hop.route_ttl
            child = hop.decision.child
            if child is None:
                break
            target = _rebase(text_wire, parsed, text, child)
            aliases.append(Alias(owner, target, ttl))
            owner = target
        if end is None:
            return tuple(aliases[:1] if request.qtype == dns.rdatatype.CNAME else aliases), (), ()
        if fallback is not None:
            ttl = min(ttl, _negative_ttl(hosting_zone(catalog, end)))
        service = engine_service(fallback if fallback is not None else end)
        aliases.append(Alias(owner, _lower_wire(catalog, service), ttl))
        if request.qtype == dns.rdatatype.CNAME:
            return tuple(aliases[:1]), (), ()
        served = _served_rrsets(catalog, service, request.qtype)
        return tuple(aliases), served, self._addresses(catalog, service, request.qtype)

    @staticmethod
    def _addresses(catalog: ZoneCatalog, name: dns.name.Name, qtype: int) -> tuple[dns.rrset.RRset, ...]:
        if qtype != dns.rdatatype.SRV:
            return ()
        return catalog.memo("semantic-addresses", name_key(name), lambda: _target_addresses(catalog, name))

    @staticmethod
    def _explain(qname: bytes, node: dns.name.Name, hops: tuple[Hop, ...],
                 fallback: dns.name.Name | None) -> Texts:
        """The `explain` answer: one TXT record per routing step, built as character-strings."""
        ttl = min((hop.route_ttl for hop in hops), default=DEFAULT_ROUTE_TTL)
        records = []
        steps = hops or (None,)
        for number, hop in enumerate(steps, start=1):
            if hop is None:
                fields = [f"hop={number}", f"node={_text(node)}", "stage=none", "confidence=0", "choice=general"]
            else:
                d = hop.decision
                choice = _text(d.child) if d.child is not None else "general"
                fields = [f"hop={number}", f"node={_text(hop.node)}", f"stage={d.stage}",
                          f"confidence={d.confidence:.4f}", f"choice={choice}"]
                if d.runner_up is not None:
                    fields.append(f"runner-up={_text(d.runner_up[0])}:{d.runner_up[1]:.4f}")
                if d.stopped is not None:
                    fields.append(f"stopped={d.stopped}")
                if hop.shed is not None:
                    fields.append(f"shed={hop.shed}")
                fields.extend(_chunks("candidates=", [f"{_text(c, hop.node)}:{s:.4f}" for c, s in d.candidates]))
            if fallback is not None and number == len(steps):
                fields.append(f"fallback={engine_service(fallback)}")
            records.append(tuple(f.encode() for f in fields))
        return Texts(qname, ttl, tuple(records))


def _text(name: dns.name.Name, origin: dns.name.Name | None = None) -> str:
    """`name` as text (relative to `origin` when given), remembered by labels: the same few route
    names are written into every `explain` answer, and dnspython writes a name in Python."""
    return _labels_text(name.labels, origin.labels if origin is not None else None)


@functools.lru_cache(maxsize=4096)  # route nodes and their children: a handful per zone
def _labels_text(labels: tuple[bytes, ...], origin: tuple[bytes, ...] | None) -> str:
    name = dns.name.Name(labels)
    return (name.relativize(dns.name.Name(origin)) if origin is not None else name).to_text()


def _shed_text(hop: Hop) -> str:
    """The EDE 0 text of a step the encoder could not serve."""
    routed = "keyword route" if hop.decision.child is not None else "general engine"
    return f"encoder overloaded ({hop.shed}) at {hop.node}: {routed}"


def _invalid(rcode: dns.rcode.Rcode, text: str) -> Refusal:
    """The refusal of bad input: `rcode` with EDE 24 (Invalid Data) saying `text`."""
    return Refusal(rcode, text, dns.edns.EDECode.INVALID_DATA, text)


def _negative(catalog: ZoneCatalog, zone: dns.zone.Zone, rcode: dns.rcode.Rcode
              ) -> tuple[int, tuple[dns.rrset.RRset, ...]]:
    """(flags, authority section) of a negative answer from `zone`: AA and the zone's SOA with
    its negative TTL (RFC 2308); nothing for FORMERR (the question itself is wrong)."""
    if rcode == dns.rcode.FORMERR:
        return 0, ()

    def negative_soa() -> tuple[dns.rrset.RRset, ...]:
        soa = zone.get_rrset(zone_origin(zone), dns.rdatatype.SOA)
        if soa is None:
            return ()
        negative = dns.rrset.RRset(soa.name, soa.rdclass, soa.rdtype)
        negative.update(soa)
        negative.ttl = _negative_ttl(zone)
        return (negative,)

    return dns.flags.AA, catalog.memo("semantic-negative-soa", name_key(zone_origin(zone)), negative_soa)


def _no_data(catalog: ZoneCatalog, zone: dns.zone.Zone) -> Response:
    """NOERROR with no data (an empty non-terminal under `q`/`explain`), cacheable."""
    flags, authority = _negative(catalog, zone, dns.rcode.NOERROR)
    return Response(reply=Reply(int(dns.rcode.NOERROR), flags, authority=authority), cacheable=True)


def _served_rrsets(catalog: ZoneCatalog, name: dns.name.Name, qtype: int) -> tuple[dns.rrset.RRset, ...]:
    """`name`'s RRset of `qtype` in the zone serving it here (none or one), built once per catalog
    snapshot (its zones never change in place) and shared by every answer: never modify it."""
    def lookup() -> tuple[dns.rrset.RRset, ...]:
        zone = hosting_zone(catalog, name)
        rrset = zone.get_rrset(name, dns.rdatatype.RdataType.make(qtype)) if zone is not None else None
        return (rrset,) if rrset is not None else ()

    return catalog.memo("semantic-rrsets", (name_key(name), qtype), lookup)


def _target_addresses(catalog: ZoneCatalog, name: dns.name.Name) -> tuple[dns.rrset.RRset, ...]:
    """The A/AAAA RRsets served here for the targets of `name`'s SRV records."""
    found: list[dns.rrset.RRset] = []
    for rrset in _served_rrsets(catalog, name, dns.rdatatype.SRV):
        for rdata in rrset:
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                found.extend(_served_rrsets(catalog, rdata.target, rdtype))
    return tuple(found)


def _chain_end(catalog: ZoneCatalog, node: dns.name.Name, hops: tuple[Hop, ...]) -> dns.name.Name | None:
    """The node whose engines end the chain here: where no child fitted, or the last child
    reached; None when the chain steps into a child another server holds (it ends there)."""
    end: dns.name.Name | None = node
    for hop in hops:
        child = hop.decision.child
        if child is None:
            return hop.node
        end = child if hosting_zone(catalog, child) is not None else None
    return end


def _fallback(catalog: ZoneCatalog, end: dns.name.Name | None) -> dns.name.Name | None:
    """The ancestor whose engines answer instead of `end`'s, when `end` has none served here."""
    if end is None:
        return None

    def lookup() -> dns.name.Name | None:
        serving = general_engine(catalog, end)
        return serving if serving is not None and serving != end else None

    return catalog.memo("semantic-fallback", name_key(end), lookup)


def _negative_ttl(zone: dns.zone.Zone | None) -> int:
    """RFC 2308: how long the zone lets an absence be cached (min of the SOA's TTL and MINIMUM)."""
    soa = zone.get_rrset(zone_origin(zone), dns.rdatatype.SOA) if zone is not None else None
    return min(soa.ttl, soa[0].minimum) if soa is not None else DEFAULT_ROUTE_TTL


def _lower_wire(catalog: ZoneCatalog, name: dns.name.Name) -> bytes:
    """`name` in lower-case wire form, computed once per catalog snapshot."""
    return catalog.memo("lower-wire", name_key(name), lambda: name_wire(name).lower())


def _rebase(text_wire: bytes, parsed: SemanticName, text: str, child: dns.name.Name) -> bytes:
    """The same text labels under `child` (`text_wire`: `labels_to_wire(parsed.labels)`), as the wire
    of the name `parsed.rebase` spells; the hashed form when they no longer fit a name there (a
    deeper zone leaves less room: the chain goes on here, another server needs the option)."""
    target = text_wire + FORM_WIRE[parsed.form] + name_wire(child).lower()
    if len(target) <= MAX_NAME_OCTETS:
        return target
    return name_wire(dns.name.from_text(hashed_qname(text, child.to_text(), parsed.form)))


def _chunks(prefix: str, items: list[str], limit: int = 255) -> list[str]:
    """`prefix` + comma-joined items, split into character-strings of at most `limit` octets."""
    out, current = [], prefix
    for item in items:
        candidate = current + ("," if current != prefix else "") + item
        if len(candidate.encode()) > limit and current != prefix:
            out.append(current)
            candidate = prefix + item
        current = candidate
    out.append(current)
    return out
