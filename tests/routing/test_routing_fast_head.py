"""A node's fast head (no model: bag-of-words stand-ins for both encoders): where `routes train`
lets it decide (`choose_decide`), and the classifier's precedence: keywords, then the fast head
when it is sure enough (no MiniLM run at all), else the MiniLM head."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import dns.name
import dns.zone
import numpy as np
import pytest
from helpers.bagofwords import BagOfWords
from helpers.twochildren import ALPHA, ORIGIN, PROFILES, WORDS

from routing.classifier import Classifier, classify, fast_probabilities
from routing.descend import descend
from routing.index import IndexCache
from routing.train import Candidate, choose_decide, train_head
from zones.catalog import ZoneCatalog


class Tokens(BagOfWords):
    """The token encoder's stand-in: counts the questions it reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def vector(self, text: str) -> np.ndarray:
        self.read.append(text)
        return super().vector(text)


class Counting(BagOfWords):
    """The MiniLM stand-in: counts the texts it embeds (beyond the profiles')."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts)


@pytest.fixture(scope="module")
def heads():
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for label, words in WORDS.items():
        for _ in range(40):
            texts.append(" ".join(rng.choice(words, size=4)))
            labels.append(label)
    vectors, y = BagOfWords().embed(texts), np.asarray(labels)
    fit = train_head(vectors, np.zeros((len(texts), 2)), y, ("alpha", "beta"), folds=4,
                     candidates=(Candidate("linear", 1e-3),))
    return fit.head, dataclasses.replace(fit.head, decide=0.7)


def build(heads, settings: str = "", fast: bool = True):
    head, fast_head = heads
    text = PROFILES.format(settings=settings) + head.to_zone_fragment(ORIGIN)
    if fast:
        text += fast_head.to_zone_fragment(ORIGIN)
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    tokens, encoder = Tokens(), Counting()
    index = IndexCache(encoder, tokens).get(zone, ORIGIN)
    encoder.texts.clear()
    return index, tokens, encoder, zone


def test_fast_head_records_sit_under_the_head(heads) -> None:
    fragment = heads[1].to_zone_fragment(ORIGIN)
    assert "_fast._head._route.example.test. 3600 IN TXT" in fragment
    assert "0._fast._head._route.example.test." in fragment and '"decide=0.7"' in fragment


def test_a_sure_fast_head_decides_without_the_model(heads) -> None:
    index, tokens, encoder, _ = build(heads)
    assert index.fast is not None and index.fast_space is not None and index.fast.decide == 0.7
    decision = classify(Classifier(tokens), index, "boat on the river in the rain", encoder)
    assert (decision.child, decision.stage) == (ALPHA, "fast") and decision.confidence >= 0.7
    assert encoder.texts == [] and tokens.read == ["boat on the river in the rain"]


def test_an_unsure_fast_head_leaves_it_to_the_head(heads) -> None:
    index, tokens, encoder, _ = build(heads)
    text = "river engine"
    probs = fast_probabilities(index, tokens.embed([text]), np.zeros(2))[0]
    assert 0.5 < probs.max() < 0.7  # one word of each: not sure enough
    decision = classify(Classifier(tokens), index, text, encoder)
    assert decision.stage == "head" and encoder.texts == [text]


def test_what_skips_the_fast_head(heads) -> None:
    index, tokens, encoder, _ = build(heads)
    text = "boat on the river in the rain"
    # keywords above th.keyword still decide first
    assert classify(Classifier(tokens), index, "gearbox", encoder).stage == "keyword"
    # a server without the token encoder, a node without a fast head
    assert classify(Classifier(), index, text, encoder).stage == "head"
    unfast, tokens2, encoder2, _ = build(heads, fast=False)
    assert unfast.fast is None and classify(Classifier(tokens2), unfast, text, encoder2).stage == "head"
    # a vector that came with the question (a client's, a resolver's) goes to the MiniLM head
    given = BagOfWords().embed([text])[0]
    assert classify(Classifier(tokens), index, text, encoder, embedding=given).stage == "head"
    # an admin's exemplar override needs MiniLM's vector: the fast head stands aside
    index, tokens, encoder, _ = build(heads, '"th.exemplar=0.95"')
    assert classify(Classifier(tokens), index, "a canoe on a calm lake", encoder).stage == "exemplar"
    # th.head above the fast head's decide: it decides only as sure as the node demands
    index, tokens, encoder, _ = build(heads, '"th.head=0.99"')
    vague = "the weather today"
    assert 0.9 < fast_probabilities(index, tokens.embed([vague]), np.zeros(2))[0].max() < 0.99
    decision = classify(Classifier(tokens), index, vague, encoder)
    assert (decision.stage, decision.child) == ("head", None) and decision.stopped is not None


def test_a_walk_reads_the_question_once(heads) -> None:
    index, tokens, encoder, zone = build(heads)
    catalog = ZoneCatalog({ORIGIN: zone})
    indexes = IndexCache(encoder, tokens)
    hops = descend(catalog, indexes, Classifier(tokens), "boat on the river in the rain", ORIGIN, encoder)
    assert [hop.decision.stage for hop in hops] == ["fast"] and hops[0].decision.child == ALPHA
    assert "boat on the river in the rain" not in encoder.texts  # MiniLM never ran on the question
    assert tokens.read == ["boat on the river in the rain"]


def test_choose_decide_takes_the_lowest_threshold_as_accurate_as_the_head() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    # the head is right everywhere but row 5; the fast head is sure and right on rows 0-3, unsure on 4-5
    head = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45]])
    fast = np.array([[0.95, 0.05], [0.9, 0.1], [0.1, 0.9], [0.05, 0.95], [0.45, 0.55], [0.5, 0.5]])
    found = choose_decide(fast, head, labels, grid=(0.5, 0.9))
    assert found is not None and found.threshold == 0.9  # at 0.5 it would decide rows 4 and 5, one wrongly
    assert found.share == pytest.approx(4 / 6) and found.fast_accuracy == 1.0 and found.head_accuracy == 1.0
    assert found.cascade_accuracy == pytest.approx(5 / 6) == found.head_alone


def test_choose_decide_refuses_a_fast_head_worse_where_it_is_sure() -> None:
    labels = np.array([0, 1, 0, 1])
    head = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    fast = np.array([[0.99, 0.01], [0.99, 0.01], [0.6, 0.4], [0.4, 0.6]])  # sure and wrong on row 1
    assert choose_decide(fast, head, labels, grid=(0.5, 0.9, 0.99)) is None
