"""Walking a question down the hosted hierarchy: classify at a node, step into the chosen child
while this catalog hosts it (no zone cut to another server), until a leaf or "no child fits".
Then, where the chain would end at a node whose `_llm._tcp` lists no engine, `general_engine`
walks back up to the nearest hosted ancestor that does (the parent's general engine).

Sans-IO: `descend_steps` yields `classifier.Embed` whenever a stage needs vectors and is sent them
back; the nameserver's semantic handler drives it with its batcher (`common.steps.drive_async`),
the in-process benchmark and the tests with an encoder (`descend`, `common.steps.drive`). The
question's vector is computed at most once and reused at every level.

Admission: a driver that cannot get the vectors in time (the encoder's queue is full, or the
question's deadline passed) throws `Shed` into the walk instead of sending them. That node's
decision is then the keyword stage's best guess (`classifier.keyword_guess`, stage `shed`), or
its general engine when no keyword matched, with a TTL of at most `SHED_TTL`; the walk goes on
below a guessed child (where keywords may decide alone).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generator

import dns.name
import dns.rdatatype
import dns.zone
import numpy as np

from common.names import name_key
from common.steps import drive
from routing.classifier import Classifier, Decision, Embed, embed_with, keyword_guess
from routing.errors import Shed
from routing.index import Encoder, IndexCache, RoutingIndex
from routing.pieces import MAX_TEXT_CHARS
from zones.catalog import ZoneCatalog

MAX_DEPTH = 16
LLM_SERVICE = dns.name.Name((b"_llm", b"_tcp"))
SHED_TTL = 1  # seconds a shed decision may be cached: a normal answer follows once the load passes


@dataclass(frozen=True)
class Hop:
    """One classification on the way down: at `node`, `decision` was taken."""

    node: dns.name.Name
    decision: Decision
    route_ttl: int  # the TTL the node's zone gives its routing answers (at most SHED_TTL when shed)
    shed: str | None = None  # the `Shed.reason` when the encoder could not serve this step
    seconds: float = field(default=0.0, compare=False)  # the step's wall time, encoder waits included


def hosting_zone(catalog: ZoneCatalog, name: dns.name.Name) -> dns.zone.Zone | None:
    """The zone that holds `name`'s own data here, or None when `name` lies beyond a zone cut
    (delegated to a server this catalog does not host) or outside every zone."""
    return catalog.memo("hosting_zone", name_key(name), lambda: _hosting_zone(catalog, name))


def _hosting_zone(catalog: ZoneCatalog, name: dns.name.Name) -> dns.zone.Zone | None:
    zone = catalog.find(name)
    if zone is None:
        return None
    cursor = name
    while cursor != zone.origin:
        ns = zone.get_rdataset(cursor, dns.rdatatype.NS)
        if ns is not None:
            return None
        cursor = cursor.parent()
    return zone


def route_index(catalog: ZoneCatalog, indexes: IndexCache, node: dns.name.Name) -> RoutingIndex | None:
    """The compiled index of `node` in the zone serving it here (None: no profiles, or not
    served here), looked up once per catalog snapshot and `indexes`."""
    def lookup() -> RoutingIndex | None:
        zone = hosting_zone(catalog, node)
        return indexes.get(zone, node) if zone is not None else None

    return catalog.memo("route_index", (indexes, name_key(node)), lookup)


def descend_steps(catalog: ZoneCatalog, indexes: IndexCache, classifier: Classifier, text: str,
                  node: dns.name.Name, embedding: np.ndarray | None = None
                  ) -> Generator[Embed, np.ndarray, tuple[Hop, ...]]:
    """Every decision from `node` down; empty when `node` has no routing profiles here. The
    classifier reads the text's first `MAX_TEXT_CHARS` characters."""
    text = text[:MAX_TEXT_CHARS]
    hops: list[Hop] = []
    vector = embedding
    while len(hops) < MAX_DEPTH:
        index = route_index(catalog, indexes, node)
        if index is None:
            break
        started = time.perf_counter()
        try:
            decision, vector = yield from classifier.steps(index, text, vector)
        except Shed as shed:
            decision = keyword_guess(index, text, "shed")
            hops.append(Hop(node, decision, min(index.settings.route_ttl, SHED_TTL), shed.reason,
                            time.perf_counter() - started))
        else:
            hops.append(Hop(node, decision, index.settings.route_ttl, seconds=time.perf_counter() - started))
        if decision.child is None:
            break
        node = decision.child
    return tuple(hops)


def descend(catalog: ZoneCatalog, indexes: IndexCache, classifier: Classifier, text: str,
            node: dns.name.Name, encoder: Encoder, embedding: np.ndarray | None = None) -> tuple[Hop, ...]:
    """`descend_steps` driven by `encoder` in the caller's thread (benchmarks, tests)."""
    return drive(descend_steps(catalog, indexes, classifier, text, node, embedding), embed_with(encoder))


def engine_service(node: dns.name.Name) -> dns.name.Name:
    """`_llm._tcp.<node>`: where the engines of `node` are listed (DNS-SD SRV/TXT)."""
    return LLM_SERVICE.concatenate(node)


def has_engines(catalog: ZoneCatalog, node: dns.name.Name) -> bool:
    """True when this catalog serves SRV records at `_llm._tcp.<node>` (registered engines the
    health monitor hides are not in the served zone, so they do not count)."""
    zone = hosting_zone(catalog, node)
    return zone is not None and zone.get_rdataset(engine_service(node), dns.rdatatype.SRV) is not None


def general_engine(catalog: ZoneCatalog, node: dns.name.Name) -> dns.name.Name | None:
    """The node whose engines answer for `node`: `node` itself when its `_llm._tcp` has SRV
    records here, else the nearest ancestor hosted here that has them (ancestors beyond a zone
    cut, which another server holds, are skipped: their engines cannot be seen from here);
    None when no level up to the root has any."""
    cursor = node
    while True:
        if has_engines(catalog, cursor):
            return cursor
        if cursor == dns.name.root or catalog.find(cursor) is None:
            return None
        cursor = cursor.parent()
