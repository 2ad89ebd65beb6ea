"""The staged classifier on the shipped profiles, with questions written for these tests."""
from __future__ import annotations

import dns.name
import dns.zone
import numpy as np
import pytest

from codec import normalize
from common.steps import drive
from routing.classifier import Classifier, Decision, Embed, classify
from routing.descend import descend, descend_steps, hosting_zone
from routing.index import IndexCache

APEX = dns.name.from_text("semantic.root.")


QUESTIONS = {
    "legal": [
        "My roommate moved out and stopped paying rent, and the landlord says I owe everything. Is that right?",
        "Can a police officer search my phone without a warrant?",
        "What does it mean when a contract says time is of the essence?",
    ],
    "medical": [
        "What are the symptoms of a vitamin B12 deficiency?",
        "is it ok to take melatonin with antihistamines",
        "Does smoking cessation before surgery reduce wound complications in older patients?",
    ],
    "code": [
        "How do I reverse the words in a sentence with Python?",
        "Write a function that flattens a nested list of any depth.",
        "My Go server panics with nil map assignment, what am I doing wrong?",
    ],
    "science": [
        "A 5 kg box is pushed with a force of 20 N across a floor with friction 8 N. What is its acceleration?",
        "Why do leaves change colour in autumn?",
        "How hot is the surface of a red giant compared to the Sun?",
    ],
    "creative": [
        "Write a poem about an old bicycle rusting in the garden.",
        "A librarian discovers that one book in the archive rewrites itself every night.",
        "Give me three knock-knock jokes about dinosaurs.",
    ],
    "finance": [
        "Should I keep cash in a high yield savings account or buy treasury bonds?",
        "How do I stop living paycheck to paycheck?",
        "What happens to my Roth IRA if I withdraw contributions early?",
    ],
}


@pytest.fixture(scope="module")
def apex_index(shipped, indexes):
    return indexes.get(shipped.zones[APEX], APEX)


@pytest.mark.parametrize(("domain", "text"), [(d, t) for d, ts in QUESTIONS.items() for t in ts])
def test_top_level_routes_own_questions(apex_index, classifier, encoder, domain, text) -> None:
    decision = classify(classifier, apex_index, text, encoder)
    assert decision.child == dns.name.from_text(f"{domain}.semantic.root.")
    assert decision.stage in {"keyword", "exemplar", "head", "embed", "deep"}
    assert 0.0 < decision.confidence <= 1.0
    assert {c for c, _ in decision.candidates} == set(apex_index.children)
    assert decision.runner_up is not None and decision.runner_up[0] != decision.child


def test_keyword_stage_decides_clear_questions(apex_index, classifier, encoder) -> None:
    decision = classify(classifier, apex_index, "python pandas dataframe traceback in my flask api", encoder)
    assert decision.stage == "keyword"
    assert decision.child == dns.name.from_text("code.semantic.root.")


def test_precomputed_embedding_skips_the_encoder(apex_index, encoder) -> None:
    class Refuses:
        def embed(self, texts):
            raise AssertionError("the encoder must not run")

    text = "Which telescope should an amateur buy to look at Saturn's rings?"
    vector = encoder.embed([text])[0]
    decision = classify(Classifier(), apex_index, text, Refuses(), embedding=vector)
    assert decision.child == dns.name.from_text("science.semantic.root.")
    assert decision.stage in {"head", "embed", "deep"}  # one sentence: the deep stage needs no encoder either


def test_descend_walks_to_a_leaf(shipped, indexes, classifier, encoder) -> None:
    hops = descend(shipped, indexes, classifier, "How do I appeal a small claims judgment?", APEX, encoder)
    assert [str(h.node) for h in hops] == ["semantic.root.", "legal.semantic.root."]
    assert hops[-1].decision.child == dns.name.from_text("litigation.legal.semantic.root.")
    assert hosting_zone(shipped, dns.name.from_text("litigation.legal.semantic.root.")).origin == \
        dns.name.from_text("legal.semantic.root.")


def test_descend_stops_at_a_cut_to_another_server(shipped, indexes, classifier, encoder) -> None:
    from zones.catalog import ZoneCatalog

    only_apex = ZoneCatalog(zones={APEX: shipped.zones[APEX]})
    hops = descend(only_apex, indexes, classifier, "what is the dosage of amoxicillin for a child", APEX, encoder)
    assert len(hops) == 1 and hops[0].decision.child == dns.name.from_text("medical.semantic.root.")


class Counting:
    """A fake encoder: deterministic vectors, and a count of the texts it embedded."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts]
        rows = np.array(rows, dtype=np.float32).reshape(len(texts), 8)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


ZONE = """$ORIGIN t.test.
@ 300 IN SOA ns1 host {serial} 3600 900 1209600 300
@ 300 IN NS ns1
ns1 300 IN A 127.0.0.1
_route 300 IN TXT "v=semroute1" "th.keyword=0.5"
a._route 300 IN TXT "v=semroute1" "desc=apples" "kw=apple,orchard" "ex=how do I grow an apple tree"
b._route 300 IN TXT "v=semroute1" "desc=boats" "kw=boat,sail" "ex={boat_example}"
"""


def make_zone(serial: int, boat_example: str = "how do I sail a boat") -> dns.zone.Zone:
    return dns.zone.from_text(ZONE.format(serial=serial, boat_example=boat_example), relativize=False)


def test_index_recompiles_on_zone_change_only() -> None:
    encoder = Counting()
    cache = IndexCache(encoder)
    node = dns.name.from_text("t.test.")
    zone = make_zone(1)
    first = cache.get(zone, node)
    assert cache.get(zone, node) is first and cache.compiles == 1
    embedded = len(encoder.texts)
    changed = make_zone(2, "what size boat fits two people")
    second = cache.get(changed, node)
    assert second is not first and cache.compiles == 2
    assert encoder.texts[embedded:] == ["what size boat fits two people"]  # memoised: only the new one
    decision = classify(Classifier(), second, "an apple orchard in spring", encoder)
    assert decision.stage == "keyword"
    assert decision.child == dns.name.from_text("a.t.test.")
    assert isinstance(decision, Decision) and decision.candidates[0][0] == decision.child


def test_zone_without_profiles_has_no_index() -> None:
    zone = dns.zone.from_text("$ORIGIN u.test.\n@ 300 IN SOA ns1 host 1 1 1 1 1\n@ 300 IN NS ns1\n",
                              relativize=False)
    assert IndexCache(Counting()).get(zone, dns.name.from_text("u.test.")) is None


def test_descent_asks_for_each_vector_once(shipped, indexes, encoder) -> None:
    # The walk is sans-IO: it yields what to embed and is sent the vectors. A keyword-decided
    # level asks for nothing; the question's own vector is asked for at most once for the whole
    # walk, and a deep stage asks only for sentences it has not seen.
    asked: list[tuple[str, ...]] = []

    def embed(request: Embed):
        asked.append(request.texts)
        return encoder.embed(list(request.texts))

    text = ("My landlord kept the deposit. I moved out in May and left the flat clean. "
            "The lease says thirty days. What can I do to get it back?")
    steps = descend_steps(shipped, indexes, Classifier(), normalize(text), APEX)
    hops = drive(steps, embed)
    assert hops and asked
    flat = [t for texts in asked for t in texts]
    assert flat.count(normalize(text)) == 1
    assert len(flat) == len(set(flat))


def test_keyword_decision_needs_no_vector(apex_index) -> None:
    steps = Classifier().steps(apex_index, "python pandas dataframe traceback in my flask api")
    with pytest.raises(StopIteration) as done:
        next(steps)  # decided without yielding a single Embed
    decision, vector = done.value.value
    assert decision.stage == "keyword" and vector is None


@pytest.mark.parametrize("size", [7, 9, 384])
def test_embedding_of_another_dimension_is_ignored(size: int) -> None:
    """A client's vector that does not fit the index is embedded again here, never multiplied."""
    encoder = Counting()
    index = IndexCache(encoder).get(make_zone(1), dns.name.from_text("t.test."))
    steps = Classifier().steps(index, "something neither fruit nor vessel", np.ones(size, dtype=np.float32))
    assert next(steps) == Embed(("something neither fruit nor vessel",))


def test_similarity_scores_follow_the_staged_formula() -> None:
    """The one-product scores (`RoutingIndex.basis`) equal 0.4 x the mean of each child's 3 nearest
    exemplars (all of them when fewer, 0 when none) + 0.4 x centroid + 0.2 x description cosine,
    computed plainly: children with 0, 1, 2 and 5 exemplars, one without a description."""
    from routing.classifier import _similarity_scores
    from routing.index import compile_index
    from zones.profile import RouteSettings, RouteTable, RoutingProfile

    def child(label: str, description: str, count: int) -> RoutingProfile:
        examples = tuple(f"{label} example {i}" for i in range(count))
        return RoutingProfile(dns.name.from_text(f"{label}.t.test."), description, (), examples)

    profiles = (child("a", "apples", 0), child("b", "boats", 1), child("c", "", 2), child("d", "dogs", 5))
    encoder = Counting()
    index = compile_index(RouteTable(dns.name.from_text("t.test."), RouteSettings(), profiles), encoder)
    vectors = encoder.embed(["one question", "another question", "a third"])
    got = _similarity_scores(index, vectors)
    for row, vector in enumerate(vectors):
        for k, profile in enumerate(profiles):
            exemplars = encoder.embed(list(profile.exemplars)) if profile.exemplars else np.zeros((0, 8))
            nearest = sorted(exemplars @ vector)[-3:]
            knn = float(np.mean(nearest)) if nearest else 0.0
            centroid = exemplars.mean(axis=0) if len(exemplars) else np.zeros(8)
            centroid = centroid / np.linalg.norm(centroid) if centroid.any() else centroid
            description = encoder.embed([profile.description])[0] if profile.description else np.zeros(8)
            want = 0.4 * knn + 0.4 * float(centroid @ vector) + 0.2 * float(description @ vector)
            assert got[row, k] == pytest.approx(want, abs=1e-5), (row, profile.child)
