"""Learned heads at a node (no model: a bag-of-words stand-in encoder): fitting and calibration
(`routing.train`), and the classifier's precedence: keyword above th.keyword, then an exemplar
above th.exemplar, then the head, which stops at the node below th.head."""
from __future__ import annotations

import dns.name
import dns.zone
import numpy as np
import pytest
from helpers.bagofwords import BagOfWords
from helpers.twochildren import ALPHA, BETA, ORIGIN, PROFILES, WORDS

from routing.classifier import Classifier, classify, head_probabilities
from routing.index import IndexCache
from routing.train import Candidate, calibrate, coverage_curve, folds_of, train_head


def corpus(seed: int = 0, per_class: int = 40) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in WORDS.items():
        for _ in range(per_class):
            texts.append(" ".join(rng.choice(words, size=4)) + " " + " ".join(rng.choice(["the", "a", "my"], 2)))
            labels.append(label)
    return texts, np.asarray(labels)


@pytest.fixture(scope="module")
def fitted():
    texts, labels = corpus()
    vectors = BagOfWords().embed(texts)
    return train_head(vectors, np.zeros((len(texts), 2)), labels, ("alpha", "beta"), folds=4,
                      candidates=(Candidate("linear", 1e-3), Candidate("mlp", 1e-3, 16)))


def index_with(head_fragment: str, settings: str = ""):
    text = PROFILES.format(settings=settings) + head_fragment
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    return IndexCache(BagOfWords()).get(zone, ORIGIN)


def test_folds_are_stratified() -> None:
    fold = folds_of(np.array([0] * 10 + [1] * 5), 5)
    for k in range(5):
        assert sorted(np.array([0] * 10 + [1] * 5)[fold == k].tolist()) == [0, 0, 1]


def test_fit_learns_separable_classes(fitted) -> None:
    assert fitted.cv_accuracy >= 0.95
    assert len(fitted.table) == 2 and fitted.head.temperature > 0
    assert fitted.cv_probs.shape == (80, 2) and fitted.cv_rows.all()
    assert fitted.head.info["rows"] == "80"


def test_calibration_prefers_a_prior_that_helps() -> None:
    logits = np.zeros((4, 2))
    shares = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    calibration = calibrate(logits, shares, np.array([0, 1, 0, 1]))
    assert calibration.prior > 0 and calibration.accuracy == 1.0 and calibration.sim == 0.0
    calibration = calibrate(logits, np.zeros_like(shares), np.array([0, 1, 0, 1]), sims=shares)
    assert calibration.sim > 0 and calibration.accuracy == 1.0


def test_grouped_folds_hold_out_whole_sources() -> None:
    groups = np.array([0, 0, 0, 1, 1, 2, -1, -1])
    fold = folds_of(np.zeros(8, dtype=np.int64), 2, groups=groups)
    assert fold[6] == fold[7] == -1
    for gid in (0, 1, 2):
        assert len(set(fold[groups == gid].tolist())) == 1
    assert fold[0] != fold[3] and fold[3] == fold[5]  # sizes 3 | 2 + 1


def test_fit_with_sources_and_similarity() -> None:
    texts, labels = corpus(per_class=20)
    vectors = BagOfWords().embed(texts)
    groups = np.array([i % 4 for i in range(len(texts))])
    groups[:5] = -1
    fit = train_head(vectors, np.zeros((len(texts), 2)), labels, ("alpha", "beta"), folds=4,
                     candidates=(Candidate("linear", 1e-3),), sims=np.zeros((len(texts), 2)), groups=groups)
    assert fit.cv_rows.sum() == len(texts) - 5 and fit.cv_probs.shape == (len(texts) - 5, 2)
    assert fit.cv_accuracy >= 0.9


def test_coverage_curve() -> None:
    rows = coverage_curve(np.array([0.9, 0.8, 0.4, 0.3]), np.array([True, True, False, True]), (0.0, 0.5))
    assert rows == [(0.0, 1.0, 0.75), (0.5, 0.5, 1.0)]


def test_head_decides_after_keywords(fitted) -> None:
    index = index_with(fitted.head.to_zone_fragment(ORIGIN))
    assert index.head is not None and index.head_columns.tolist() == [0, 1]
    decision = classify(Classifier(), index, "the boat under the bridge in the rain", BagOfWords())
    assert (decision.child, decision.stage, decision.stopped) == (ALPHA, "head", None)
    assert decision.confidence > 0.5 and decision.runner_up[0] == BETA
    # an admin's keyword above th.keyword still decides
    decision = classify(Classifier(), index, "gearbox", BagOfWords())
    assert (decision.child, decision.stage) == (BETA, "keyword")


def test_below_th_head_the_walk_stops(fitted) -> None:
    index = index_with(fitted.head.to_zone_fragment(ORIGIN), '"th.head=0.99"')
    decision = classify(Classifier(), index, "water and fuel on the road by the river", BagOfWords())
    assert decision.child is None and decision.stage == "head"
    assert decision.stopped is not None and decision.stopped.startswith("confidence ")
    assert decision.stopped.endswith("< 0.99") and decision.runner_up is not None


def test_exemplar_override(fitted) -> None:
    index = index_with(fitted.head.to_zone_fragment(ORIGIN), '"th.exemplar=0.95"')
    decision = classify(Classifier(), index, "a canoe on a calm lake", BagOfWords())
    assert (decision.child, decision.stage) == (ALPHA, "exemplar") and decision.confidence >= 0.95


def test_probabilities_sum_to_one_and_unknown_child_gets_zero(fitted) -> None:
    head = fitted.head
    only_alpha = type(head)(("alpha", "gamma"), head.kind, head.layers, head.temperature, head.prior)
    index = index_with(only_alpha.to_zone_fragment(ORIGIN))
    probs = head_probabilities(index, BagOfWords().embed(["car on the road"]), np.zeros(2))
    assert probs.shape == (1, 2) and probs[0, 1] == 0.0 and probs[0, 0] == pytest.approx(1.0)


def test_no_head_keeps_the_staged_scores() -> None:
    index = index_with("")
    assert index.head is None
    decision = classify(Classifier(), index, "the boat under the bridge", BagOfWords())
    assert decision.stage in {"embed", "deep"}
