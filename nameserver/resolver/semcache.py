"""The semantic cache: a new question close enough to a cached one reuses its *route*.

A route is where the CNAME chain of a question asked at `zone` ended (e.g. the engines at
`_llm._tcp.contract.legal.semantic.root.`), with the TTL of that chain. Only routes are kept, never
answer texts nor question texts: a shared resolver must not leak one client's prompt to another.

A hit needs both
- cosine similarity of the embeddings >= the zone's threshold (per zone, with a default), and
- the `Guard`: the two questions agree on negation, on the numbers they mention and on their named
  entities. Embeddings of "is a verbal contract binding" and "is a verbal contract *not* binding",
  or "tax on 10000" and "tax on 90000", sit close together but must not share a route blindly.
  Only these derived features of a question are stored, not its text, and only as keyed
  digests (`features`): numbers and names asked stay unreadable in the cache.

Entries live under a key that is a keyed digest of (scope, zone): `scope` is whose entries they
are (the resolver passes the client's address, so a shortcut never reveals another client's
question; "" for one shared scope). Vectors that are not `nameserver.vectors.usable` (another
dimension, NaN/inf, not unit length) are neither stored nor looked up: a miss, never an error.

Pure: numpy vectors in (the embedder belongs to `routing/`), an injectable clock.

    cache = SemanticCache(thresholds={dns.name.from_text("semantic.root."): 0.9})
    cache.put(zone, "is a verbal contract binding", vector, route, ttl=300, scope="192.0.2.1")
    hit = cache.lookup(zone, "is an oral contract binding", other_vector, scope="192.0.2.1")   # -> SemanticHit | None
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

import dns.name
import numpy as np

from common.names import name_wire
from nameserver.vectors import usable

Clock = Callable[[], float]

NEGATIONS = frozenset(
    "not no never without none nor neither cannot can't don't doesn't didn't isn't aren't wasn't "
    "weren't won't wouldn't shouldn't couldn't mustn't hasn't haven't hadn't nobody nothing nowhere "
    "avoid except unless".split()
)
_WORD = re.compile(r"[\w'’]+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE = re.compile(r"[.?!;:]\s+")
#: capitalised words that start questions or are too common to be names
_NOT_ENTITIES = frozenset(
    "i a an the is are was were what why how when where who which whom whose can could should would "
    "will do does did my your our their his her its if in on at for to of and or but".split()
)


#: the key of every digest this process makes (numbers, names, entry keys): not guessable offline
_DIGEST_KEY = os.urandom(16)


def _digest(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"\0".join(parts), digest_size=16, key=_DIGEST_KEY).digest()


@dataclass(frozen=True)
class Features:
    """What the guard compares: derived from a question, its numbers and names as digests."""

    negated: bool
    numbers: frozenset[bytes]
    entities: frozenset[bytes]


def features(text: str) -> Features:
    """Negation (an odd count of negation words), the numbers, capitalised words inside sentences
    (those two as keyed digests: equal words, equal digests)."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    words = _WORD.findall(text)
    negations = sum(w.lower() in NEGATIONS or w.lower().endswith("n't") for w in words)
    numbers = frozenset(_digest(n.replace(",", "").encode()) for n in _NUMBER.findall(text))
    entities = frozenset(
        _digest(w.lower().encode())
        for sentence in _SENTENCE.split(text)
        for i, w in enumerate(_WORD.findall(sentence))
        if i > 0 and w[:1].isupper() and w.lower() not in _NOT_ENTITIES and w.lower() not in NEGATIONS
    )
    return Features(negated=negations % 2 == 1, numbers=numbers, entities=entities)


def guard_allows(a: Features, b: Features) -> bool:
    """True when two close questions may share a route."""
    return a == b


@dataclass(frozen=True)
class SemanticHit:
    route: dns.name.Name
    ttl: int  # remaining seconds
    similarity: float


@dataclass(frozen=True)
class SemanticStats:
    hits: int
    misses: int
    guarded: int  # lookups where a close enough neighbour was refused by the guard
    size: int


@dataclass
class _Entry:
    vector: np.ndarray
    features: Features
    route: dns.name.Name
    expires: float
    size: int = 0  # `entry_bytes`, set when stored


#: approximate bytes of an entry besides its vector, route and features (the objects, the slot).
ENTRY_OVERHEAD = 400


def entry_bytes(entry: _Entry) -> int:
    """What `entry` counts against `max_bytes` (approximate)."""
    derived = sum(len(word) for word in entry.features.numbers | entry.features.entities)
    return entry.vector.nbytes + len(name_wire(entry.route)) + derived + ENTRY_OVERHEAD


class SemanticCache:
    """Per-zone nearest-neighbour cache of routes with TTLs; over `max_entries` or `max_bytes`
    (`entry_bytes`), the least recently used entry of the largest (scope, zone) goes first."""

    def __init__(
        self,
        thresholds: Mapping[dns.name.Name, float] | None = None,
        *,
        default_threshold: float = 0.9,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self._thresholds = dict(thresholds or {})
        self._default = default_threshold
        self._max = max_entries
        self._clock = clock
        self._zones: dict[bytes, OrderedDict[int, _Entry]] = {}  # by `_key(scope, zone)`
        self._matrix: dict[bytes, tuple[np.ndarray, list[int]]] = {}
        self._next_id = 0
        self._size = 0
        self._max_bytes = max_bytes
        self.bytes = 0  # what the entries take, as `max_bytes` counts it
        self._hits = self._misses = self._guarded = 0

    def threshold(self, zone: dns.name.Name) -> float:
        return self._thresholds.get(zone, self._default)

    def set_threshold(self, zone: dns.name.Name, value: float) -> None:
        self._thresholds[zone] = value

    def put(self, zone: dns.name.Name, text: str, vector: np.ndarray, route: dns.name.Name, ttl: int,
            *, scope: str = "") -> None:
        """Remember that `text` asked at `zone` by `scope` was routed to `route` for `ttl` seconds
        (nothing when `vector` is not usable)."""
        unit = usable(vector)
        if ttl <= 0 or unit is None:
            return
        key = _key(scope, zone)
        entry = _Entry(unit, features(text), route, self._clock() + ttl)
        entry.size = entry_bytes(entry)
        if entry.size > self._max_bytes:
            return
        entries = self._zones.setdefault(key, OrderedDict())
        entries[self._next_id] = entry
        self._next_id += 1
        self._size += 1
        self.bytes += entry.size
        self._matrix.pop(key, None)
        while self._size > self._max or self.bytes > self._max_bytes:
            self._evict_one()

    def lookup(self, zone: dns.name.Name, text: str, vector: np.ndarray, *, scope: str = "") -> SemanticHit | None:
        """The route of the closest question `scope` cached at `zone` that passes threshold and
        guard, or None (also for a vector that is not usable)."""
        key = _key(scope, zone)
        entries = self._zones.get(key)
        unit = usable(vector)
        if not entries or unit is None:
            self._misses += 1
            return None
        self._expire(key)
        matrix, ids = self._matrix_of(key)
        if not ids:
            self._misses += 1
            return None
        scores = matrix @ unit
        order = np.argsort(-scores)
        wanted = features(text)
        threshold = self.threshold(zone)
        refused = False
        for index in order:
            score = float(scores[index])
            if score < threshold:
                break
            entry = entries[ids[index]]
            if not guard_allows(wanted, entry.features):
                refused = True
                continue
            entries.move_to_end(ids[index])
            self._hits += 1
            return SemanticHit(entry.route, int(entry.expires - self._clock()), score)
        self._guarded += refused
        self._misses += 1
        return None

    @property
    def stats(self) -> SemanticStats:
        return SemanticStats(self._hits, self._misses, self._guarded, self._size)

    def _matrix_of(self, key: bytes) -> tuple[np.ndarray, list[int]]:
        cached = self._matrix.get(key)
        if cached is None:
            entries = self._zones[key]
            ids = list(entries)
            matrix = np.stack([entries[i].vector for i in ids]) if ids else np.zeros((0, 1), np.float32)
            cached = self._matrix[key] = (matrix, ids)
        return cached

    def _expire(self, key: bytes) -> None:
        now = self._clock()
        entries = self._zones[key]
        dead = [i for i, e in entries.items() if int(e.expires - now) <= 0]
        for i in dead:
            self.bytes -= entries.pop(i).size
        if dead:
            self._size -= len(dead)
            self._matrix.pop(key, None)

    def _evict_one(self) -> None:
        key = max(self._zones, key=lambda k: len(self._zones[k]))
        _id, entry = self._zones[key].popitem(last=False)
        self.bytes -= entry.size
        self._size -= 1
        self._matrix.pop(key, None)


def _key(scope: str, zone: dns.name.Name) -> bytes:
    """Where (scope, zone)'s entries live: a keyed digest, no readable address or name."""
    return _digest(scope.encode(), name_wire(zone).lower())
