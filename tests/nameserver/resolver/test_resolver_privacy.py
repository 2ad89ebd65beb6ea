"""The semantic cache learns only from vectors computed here, takes no malformed vector, keeps no
readable question, and gives one client's paraphrase no shortcut learned from another client."""
from __future__ import annotations

import dns.edns
import dns.name
import dns.rcode
import dns.rdatatype
import numpy as np
import pytest
from helpers.embedding import awaiting
from resolver_fakes import hierarchy, running

from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.routecache import RouteCache
from nameserver.resolver.semcache import SemanticCache

N = dns.name.from_text
ROOT = N("semantic.root.")
CONTRACT = N("_llm._tcp.contract.legal.semantic.root.")


def unit(seed: int) -> np.ndarray:
    vec = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return vec / np.linalg.norm(vec)


@pytest.mark.parametrize("vector", [
    unit(0)[:7], np.full(384, np.nan, np.float32), np.full(384, np.inf, np.float32),
    np.zeros(384, np.float32), 3 * unit(0),
], ids=["7-dimensions", "nan", "inf", "zero", "not-unit"])
def test_a_malformed_vector_is_ignored_not_an_error(vector: np.ndarray) -> None:
    cache = SemanticCache(default_threshold=0.9)
    cache.put(ROOT, "is a verbal contract binding", vector, CONTRACT, 300)
    assert cache.stats.size == 0
    cache.put(ROOT, "is a verbal contract binding", unit(0), CONTRACT, 300)
    assert cache.lookup(ROOT, "is a verbal contract binding", vector) is None
    assert cache.lookup(ROOT, "is a verbal contract binding", unit(0)) is not None


def test_numbers_names_and_scopes_are_kept_as_digests() -> None:
    cache = SemanticCache()
    cache.put(ROOT, "my client Zyxwv owes 70707070 dollars", unit(0), CONTRACT, 300, scope="192.0.2.77")
    stored = repr(vars(cache))
    for secret in ("zyxwv", "Zyxwv", "70707070", "192.0.2.77", "owes"):
        assert secret not in stored


def test_entries_serve_only_their_own_scope() -> None:
    cache = SemanticCache(default_threshold=0.9)
    cache.put(ROOT, "is a verbal contract binding", unit(0), CONTRACT, 300, scope="192.0.2.1")
    assert cache.lookup(ROOT, "is an oral contract binding", unit(0), scope="192.0.2.2") is None
    assert cache.lookup(ROOT, "is an oral contract binding", unit(0), scope="192.0.2.1") is not None


async def test_a_paraphrase_gets_no_shortcut_from_another_clients_question() -> None:
    vectors = {"breach": unit(1), "breaching": unit(1), "breaches": unit(1)}
    async with running(list(hierarchy().values())) as port:
        r = Recursor(Hints.single("semantic.root.", "127.0.0.1"),
                     config=ResolverConfig(port=port, query_timeout=0.2, total_timeout=2.0),
                     routes=RouteCache(SemanticCache(default_threshold=0.9), embed=awaiting(vectors.__getitem__)))
        await r.resolve(N("breach.q.semantic.root."), dns.rdatatype.SRV, client="192.0.2.1")
        other = await r.resolve(N("breaching.q.semantic.root."), dns.rdatatype.SRV, client="192.0.2.2")
        same = await r.resolve(N("breaches.q.semantic.root."), dns.rdatatype.SRV, client="192.0.2.1")
    assert other.rcode == dns.rcode.NXDOMAIN and other.queries > 0  # asked the servers, like a first ask
    assert not other.private
    assert same.rcode == dns.rcode.NOERROR and same.private and same.queries == 0
    assert [str(rr.name) for rr in same.answer[:1]] == ["breaches.q.semantic.root."]
    assert str(same.answer[0][0].target) == str(CONTRACT)  # no label of the earlier question


async def test_a_client_embedding_never_reaches_the_route_cache() -> None:
    from codec.edns_text import EMBEDDING_OPTION, encode_embedding_option, model_tag

    foreign = dns.edns.GenericOption(EMBEDDING_OPTION, encode_embedding_option(unit(5), model_tag("m")))
    async with running(list(hierarchy().values())) as port:
        r = Recursor(Hints.single("semantic.root.", "127.0.0.1"),
                     config=ResolverConfig(port=port, query_timeout=0.2, total_timeout=2.0),
                     routes=RouteCache(SemanticCache()))  # no local encoder: nothing to learn from
        result = await r.resolve(N("breach.q.semantic.root."), dns.rdatatype.SRV, (foreign,))
    assert result.rcode == dns.rcode.NOERROR
    assert r.routes is not None and r.routes.cache.stats.size == 0
