"""The semantic cache: nearest-route reuse under a per-zone threshold, TTLs, LRU, and the guard."""
from __future__ import annotations

import dns.name
import numpy as np
import pytest

from nameserver.resolver.semcache import SemanticCache, features, guard_allows

N = dns.name.from_text
ROOT = N("semantic.root.")
CONTRACT = N("_llm._tcp.contract.legal.semantic.root.")
TAX = N("_llm._tcp.tax.finance.semantic.root.")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def near(base: np.ndarray, cosine: float, seed: int = 1) -> np.ndarray:
    """A unit vector at exactly `cosine` from `base`."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=base.size)
    noise -= noise @ base * base
    noise /= np.linalg.norm(noise)
    return cosine * base + np.sqrt(1 - cosine**2) * noise


@pytest.fixture
def base() -> np.ndarray:
    vec = np.random.default_rng(0).normal(size=384)
    return vec / np.linalg.norm(vec)


def test_close_question_reuses_the_route_and_a_far_one_does_not(base: np.ndarray) -> None:
    cache = SemanticCache(default_threshold=0.9)
    cache.put(ROOT, "is a verbal contract binding", base, CONTRACT, ttl=300)
    hit = cache.lookup(ROOT, "is an oral contract binding", near(base, 0.95))
    assert hit is not None and hit.route == CONTRACT and hit.similarity == pytest.approx(0.95, abs=1e-4)
    assert cache.lookup(ROOT, "is an oral contract binding", near(base, 0.85)) is None
    assert cache.stats.hits == 1 and cache.stats.misses == 1


def test_thresholds_are_per_zone(base: np.ndarray) -> None:
    legal = N("legal.semantic.root.")
    cache = SemanticCache({legal: 0.97}, default_threshold=0.9)
    cache.put(ROOT, "q", base, CONTRACT, ttl=300)
    cache.put(legal, "q", base, CONTRACT, ttl=300)
    assert cache.lookup(ROOT, "q", near(base, 0.95)) is not None
    assert cache.lookup(legal, "q", near(base, 0.95)) is None
    assert cache.lookup(N("medical.semantic.root."), "q", base) is None  # zones do not mix


def test_routes_expire_with_their_ttl(base: np.ndarray) -> None:
    clock = FakeClock()
    cache = SemanticCache(clock=clock)
    cache.put(ROOT, "q", base, CONTRACT, ttl=300)
    clock.now = 100
    assert cache.lookup(ROOT, "q", base).ttl == 200
    clock.now = 300
    assert cache.lookup(ROOT, "q", base) is None
    assert cache.stats.size == 0


def test_size_bound_evicts_least_recently_used(base: np.ndarray) -> None:
    cache = SemanticCache(max_entries=2, default_threshold=0.99)
    a, b, c = base, near(base, 0.5, 2), near(base, 0.5, 3)
    cache.put(ROOT, "a", a, CONTRACT, 300)
    cache.put(ROOT, "b", b, TAX, 300)
    assert cache.lookup(ROOT, "a", a) is not None  # a becomes most recent
    cache.put(ROOT, "c", c, TAX, 300)
    assert cache.lookup(ROOT, "b", b) is None
    assert cache.lookup(ROOT, "a", a) is not None
    assert cache.stats.size == 2


def test_only_routes_and_features_are_stored_never_text(base: np.ndarray) -> None:
    cache = SemanticCache()
    secret = "my client Zyxwv owes 12345 dollars"
    cache.put(ROOT, secret, base, CONTRACT, 300)
    stored = repr(vars(cache))
    assert "owes" not in stored and "my client" not in stored


@pytest.mark.parametrize(
    "a, b",
    [
        ("Is a verbal contract legally binding?", "Is a verbal contract not legally binding?"),
        ("Can I deduct home office costs?", "Can't I deduct home office costs?"),
        ("How much tax do I pay on 10000 dollars?", "How much tax do I pay on 90000 dollars?"),
        ("Can I sue Acme for breach?", "Can I sue Globex for breach?"),
    ],
)
def test_guard_refuses_negation_number_and_entity_changes(base: np.ndarray, a: str, b: str) -> None:
    assert not guard_allows(features(a), features(b))
    cache = SemanticCache(default_threshold=0.9)
    cache.put(ROOT, a, base, CONTRACT, 300)
    assert cache.lookup(ROOT, b, near(base, 0.99)) is None  # embeddings agree, the guard does not
    assert cache.stats.guarded == 1
    assert cache.lookup(ROOT, a, near(base, 0.99)) is not None  # the guard is not blocking everything


def test_guard_allows_paraphrases() -> None:
    assert guard_allows(
        features("Is a verbal contract legally binding?"), features("is an oral contract legally binding")
    )
    assert guard_allows(features("I never signed it, is it valid? No."), features("Is it valid, I signed it?"))


@pytest.mark.model
def test_guard_with_real_embeddings_blocks_a_near_duplicate_negation() -> None:
    from routing.embedder import load_embedder

    embedder = load_embedder()
    texts = [
        "Is a verbal contract legally binding?",
        "Is a verbal contract not legally binding?",
        "Is a verbal contract legally binding in court?",
    ]
    vectors = embedder.embed(texts)
    cache = SemanticCache(default_threshold=0.9)
    cache.put(ROOT, texts[0], vectors[0], CONTRACT, 300)
    assert float(vectors[0] @ vectors[1]) > 0.9  # the embedding alone would have hit
    assert cache.lookup(ROOT, texts[1], vectors[1]) is None
    hit = cache.lookup(ROOT, texts[2], vectors[2])
    assert hit is not None and hit.route == CONTRACT


def test_byte_budget_evicts_the_least_recently_used_and_is_never_passed(base: np.ndarray) -> None:
    budget = 50_000  # about 25 entries of 384 float32 dimensions
    cache = SemanticCache(max_entries=100_000, default_threshold=0.99, max_bytes=budget)
    cache.put(ROOT, "kept", base, CONTRACT, 300)
    for i in range(200):
        cache.put(ROOT, f"q{i}", near(base, 0.5, i + 10), TAX, 300)
        assert cache.bytes <= budget
        assert cache.lookup(ROOT, "kept", base) is not None, i
    assert 10 < cache.stats.size < 200
    assert cache.lookup(ROOT, "q0", near(base, 0.5, 10)) is None
    assert cache.lookup(ROOT, "q199", near(base, 0.5, 209)) is not None
