"""The compiled routing index of one route node, and the cache that recompiles it on zone change.

`compile_index(table, encoder)` turns a `RouteTable` (parsed profiles) into what the classifier
needs at query time: the keyword matcher, the exemplar vectors with their owners, per-child
centroids and description vectors, the thresholds, and the node's learned head (`zones.head`).
`IndexCache.get(zone, node)` returns the index of a node, compiling it when the zone object or
its SOA serial changed; exemplar vectors are memoised by text, so a reload that only touches a
few exemplars embeds only those.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import dns.name
import dns.rdatatype
import dns.zone
import numpy as np

from common.names import zone_origin
from routing.keywords import KeywordMatcher
from zones.head import HeadError, RouteHead, parse_head
from zones.profile import RouteSettings, RouteTable, RoutingProfile, parse_profiles

KNN = 3  # the staged scorer's nearest exemplars of a child (`routing.classifier`)
WEIGHTS = (0.4, 0.4, 0.2)  # ... and its weights: the KNN's mean, the centroid, the description


class Encoder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class RoutingIndex:
    """Everything the classifier needs for one node; immutable once built."""

    node: dns.name.Name
    settings: RouteSettings
    children: tuple[dns.name.Name, ...]
    profiles: tuple[RoutingProfile, ...]
    matcher: KeywordMatcher
    exemplars: np.ndarray  # (n, d) unit vectors
    owners: np.ndarray  # (n,) index into children
    centroids: np.ndarray  # (k, d) unit vectors
    descriptions: np.ndarray  # (k, d) unit vectors (zeros for a child without desc=)
    spans: tuple[tuple[int, int], ...] = ()  # per child, its exemplars' rows [start, end) (contiguous)
    # The staged similarity scores in one product (`routing.classifier._similarity_scores`): `basis`
    # (d, n + 2k + 1) holds as columns the exemplars, the centroids and the descriptions times their
    # `WEIGHTS`, and a pad; `knn_columns` (k, >= KNN) each child's exemplar columns, padded with the
    # pad's; `knn_weights` (k, KNN) the weights of a child's KNN nearest in ascending order (a pad
    # sorts first and weighs 0).
    basis: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.float32))
    knn_columns: np.ndarray = field(default_factory=lambda: np.zeros((0, KNN), dtype=np.int64))
    knn_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, KNN), dtype=np.float32))
    head: RouteHead | None = None  # the node's learned head (zones.head), None: the staged scores
    head_columns: np.ndarray | None = None  # (k,) per child, its class in `head` (-1: none)
    fast: RouteHead | None = None  # the node's fast head (token encoder, decides above `fast.decide`)
    fast_columns: np.ndarray | None = None  # (k,) per child, its class in `fast` (-1: none)
    fast_space: RoutingIndex | None = None  # the same profiles embedded by the token encoder (the fast head's sim)

    def embed_threshold(self, child: int) -> float:
        override = self.profiles[child].embed_threshold
        return self.settings.embed_threshold if override is None else override


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0.0, 1.0, norms)


class MemoEncoder:
    """Text -> vector memo in front of an encoder (shared by all compiles of one cache); `known`
    seeds it with vectors already computed (e.g. a labelled set's, `tools.routes_data.embed_all`)."""

    def __init__(self, encoder: Encoder, known: dict[str, np.ndarray] | None = None) -> None:
        self.encoder = encoder
        self._vectors: dict[str, np.ndarray] = dict(known or {})

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.encoder.embed(missing)):
                self._vectors[text] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])


def compile_index(table: RouteTable, encoder: Encoder, head: RouteHead | None = None,
                  fast: RouteHead | None = None, tokens: Encoder | None = None,
                  matcher: KeywordMatcher | None = None) -> RoutingIndex:
    """Build the index of one node from its parsed profiles (and its head and fast head, when it
    has ones whose classes are children: one that knows none of them is ignored); with `tokens`
    (the token encoder), also the profiles in its space, `fast_space`, sharing the keyword
    `matcher` (built here when not given)."""
    profiles = table.profiles
    children = tuple(p.child for p in profiles)
    if matcher is None:
        matcher = KeywordMatcher({i: p.keywords for i, p in enumerate(profiles)})
    texts: list[str] = []
    owners: list[int] = []
    for i, profile in enumerate(profiles):
        texts.extend(profile.exemplars)
        owners.extend([i] * len(profile.exemplars))
    descriptions = [p.description for p in profiles]
    vectors = encoder.embed(texts + [d for d in descriptions if d]) if (texts or any(descriptions)) else None
    dim = vectors.shape[1] if vectors is not None else 0
    exemplars = vectors[: len(texts)] if vectors is not None else np.zeros((0, dim), dtype=np.float32)
    desc_rows = iter(vectors[len(texts):] if vectors is not None else [])
    desc = np.stack([next(desc_rows) if d else np.zeros(dim, dtype=np.float32) for d in descriptions]) \
        if profiles else np.zeros((0, dim), dtype=np.float32)
    owner_array = np.asarray(owners, dtype=np.int64)
    centroids = np.zeros((len(profiles), dim), dtype=np.float32)
    for i in range(len(profiles)):
        mine = exemplars[owner_array == i]
        if len(mine):
            centroids[i] = mine.mean(axis=0)
    exemplars, centroids, desc = _unit(exemplars.astype(np.float32)), _unit(centroids), _unit(desc.astype(np.float32))
    spans = _spans(owners, len(profiles))
    return RoutingIndex(
        node=table.node,
        settings=table.settings,
        children=children,
        profiles=profiles,
        matcher=matcher,
        exemplars=exemplars,
        owners=owner_array,
        centroids=centroids,
        descriptions=desc,
        spans=spans,
        basis=_basis(exemplars, centroids, desc),
        knn_columns=_knn_columns(spans, len(exemplars) + 2 * len(profiles)),
        knn_weights=_knn_weights(spans),
        head=_knowing(children, head),
        head_columns=head_columns(children, head) if head is not None else None,
        fast=_knowing(children, fast),
        fast_columns=head_columns(children, fast) if fast is not None else None,
        fast_space=compile_index(table, tokens, matcher=matcher) if tokens is not None else None,
    )


def _knowing(children: tuple[dns.name.Name, ...], head: RouteHead | None) -> RouteHead | None:
    """`head` when one of its classes is a child, else None."""
    return head if head is not None and head_columns(children, head).max(initial=-1) >= 0 else None


def head_columns(children: tuple[dns.name.Name, ...], head: RouteHead) -> np.ndarray:
    """Per child, the column of its class in `head` (-1 for a child the head does not know)."""
    position = {label: i for i, label in enumerate(head.classes)}
    return np.array([position.get(child.labels[0].decode().lower(), -1) for child in children], dtype=np.int64)


def _spans(owners: list[int], children: int) -> tuple[tuple[int, int], ...]:
    """Each child's exemplar rows as [start, end): `compile_index` lists them child by child."""
    spans = []
    for i in range(children):
        start = owners.index(i) if i in owners else len(owners)
        end = start + owners.count(i)
        if owners[start:end] != [i] * (end - start):
            raise ValueError(f"exemplars of child {i} are not contiguous")
        spans.append((start, end))
    return tuple(spans)


def _basis(exemplars: np.ndarray, centroids: np.ndarray, descriptions: np.ndarray) -> np.ndarray:
    """(d, n + 2k + 1): the exemplars, the weighted centroids and descriptions, a pad (zeros) as columns."""
    _, w_centroid, w_description = WEIGHTS
    pad = np.zeros((1, exemplars.shape[1]), dtype=np.float32)
    rows = np.vstack([exemplars, w_centroid * centroids, w_description * descriptions, pad])
    return np.ascontiguousarray(rows.T, dtype=np.float32)


def _knn_columns(spans: tuple[tuple[int, int], ...], pad: int) -> np.ndarray:
    """(k, L) each child's exemplar columns, padded with `pad` (L: the most exemplars of a child,
    at least KNN): the classifier takes each child's nearest exemplars in one sort."""
    width = max([end - start for start, end in spans] + [KNN])
    columns = np.full((len(spans), width), pad, dtype=np.int64)
    for child, (start, end) in enumerate(spans):
        columns[child, : end - start] = np.arange(start, end)
    return columns


def _knn_weights(spans: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(k, KNN) the weight of each of a child's KNN nearest exemplars, ascending: the KNN weight
    over how many it has (at most KNN), 0 for the pads that sort before them."""
    weights = np.zeros((len(spans), KNN), dtype=np.float32)
    for child, (start, end) in enumerate(spans):
        found = min(end - start, KNN)
        if found:
            weights[child, KNN - found:] = WEIGHTS[0] / found
    return weights


def zone_serial(zone: dns.zone.Zone) -> int | None:
    soa = zone.get_rdataset(zone_origin(zone), dns.rdatatype.SOA)
    return soa[0].serial if soa else None


class IndexCache:
    """Compiled indexes keyed by (zone origin, node); stale when the zone object or serial changes."""

    def __init__(self, encoder: Encoder, tokens: Encoder | None = None) -> None:
        self._memo = MemoEncoder(encoder)
        self._tokens = MemoEncoder(tokens) if tokens is not None else None  # the fast heads' encoder
        self._lock = threading.Lock()
        self._entries: dict[tuple[dns.name.Name, dns.name.Name], tuple[weakref.ref, int | None, RoutingIndex]] = {}
        self.compiles = 0

    @property
    def encoder(self) -> Encoder:
        return self._memo.encoder

    def get(self, zone: dns.zone.Zone, node: dns.name.Name) -> RoutingIndex | None:
        """The index of `node` in `zone`, or None when the node has no child profiles."""
        key = (zone_origin(zone), node)
        serial = zone_serial(zone)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is zone and entry[1] == serial:
            return entry[2]
        with self._lock:
            table = parse_profiles(zone, node)
            if not table.profiles:
                self._entries.pop(key, None)
                return None
            head, fast = _head_or_none(zone, node, False), _head_or_none(zone, node, True)
            index = compile_index(table, self._memo, head, fast, self._tokens)
            self._entries[key] = (weakref.ref(zone), serial, index)
            self.compiles += 1
            return index


def _head_or_none(zone: dns.zone.Zone, node: dns.name.Name, fast: bool) -> RouteHead | None:
    try:
        return parse_head(zone, node, fast)
    except HeadError:  # `zone check` refuses such a zone; one changed since serves without
        return None
