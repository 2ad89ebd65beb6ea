"""The staged classifier (ARCHITECTURE §4): keywords, then embeddings, then a deep stage.

1. `keyword`: the compiled matcher; decides alone when its confidence reaches `th.keyword`.
2. `embed`: one sentence vector (given, e.g. from the EDNS embedding option, or computed) scored
   against each child as 0.4 * mean of the 3 nearest exemplars + 0.4 * centroid cosine + 0.2 *
   description cosine, plus keyword evidence (0.15 * the child's share). A softmax over the
   children (temperature 0.05) gives the confidence; decides when it reaches the child's
   `th.embed` and the score margin over the runner-up reaches `th.margin`.
With a learned head (`zones.head`, written by `semdns routes train`), stages 2 and 3 give way to it.
Precedence: (a) a keyword hit at or above `th.keyword` decides (the admin's override); (a') the
node's fast head (`_fast._head._route`, over the token encoder's vector: no model run) decides
(`stage=fast`) when its best child's probability reaches its `decide` and `th.head`, unless a
MiniLM vector is already there (the client's, or a level above ran the encoder: it is used) or
the node sets an exemplar override (b); (b) an
exemplar whose cosine reaches `th.exemplar` (default 1: off) decides for its child (`stage=exemplar`,
confidence = that cosine); (c) the head's calibrated softmax (its logits plus `prior` times the
keyword shares and `sim` times the profiles' similarity scores, over its temperature) decides
(`stage=head`) when its best child's probability reaches `th.head`; below it the walk stops at
this node (`child=None`: its general engine) and the decision says `stopped="confidence 0.41 < 0.60"`.
3. `deep`: what stays ambiguous is re-read sentence by sentence (each sentence embedded and
   scored like the whole; long, chatty questions often carry their topic in one sentence), the
   distributions averaged with the whole-text one and stronger keyword evidence. When even that
   finds no child similar enough (best exemplar cosine under `NO_FIT_SIMILARITY` and no keyword),
   the decision is `child=None`: the parent's general engine answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Generator, Protocol, cast

import dns.name
import numpy as np

from common.steps import drive
from routing.index import KNN, Encoder, RoutingIndex
from routing.keywords import KeywordResult
from zones.head import RouteHead

KEYWORD_BONUS = 0.15
DEEP_KEYWORD_BONUS = 0.3
TEMPERATURE = 0.05
NO_FIT_SIMILARITY = 0.12
MAX_SENTENCES = 6  # the deep stage reads at most this many sentences
SENTENCE_MEMO = 512
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

Candidate = tuple[dns.name.Name, float]


@dataclass(frozen=True)
class Embed:
    """What a classification step needs done: the unit vectors of `texts`, in order."""

    texts: tuple[str, ...]


def embed_with(encoder: Encoder) -> Callable[[Embed], np.ndarray]:
    """The blocking I/O for `common.steps.drive`: run the encoder in the caller's thread."""
    return lambda request: encoder.embed(list(request.texts))


@dataclass(frozen=True)
class Decision:
    """Where a question goes: `child` (None: this node's general engine) and how that was decided."""

    child: dns.name.Name | None
    stage: str  # "keyword" | "fast" | "exemplar" | "head" | "embed" | "deep" | "none"
    confidence: float
    runner_up: Candidate | None
    candidates: tuple[Candidate, ...]  # every child with its score, best first
    stopped: str | None = None  # why a confident-enough child was not chosen ("confidence 0.41 < 0.60")


def _keyword_shares(index: RoutingIndex, result: KeywordResult) -> np.ndarray:
    shares = np.array([result.scores.get(i, 0.0) for i in range(len(index.children))])
    total = shares.sum()
    return shares / total if total else shares


def _similarity_scores(index: RoutingIndex, vectors: np.ndarray) -> np.ndarray:
    """(m, k) child scores for m unit vectors, in one product with the index's `basis`."""
    n, k = len(index.exemplars), len(index.children)
    sims = vectors @ index.basis  # (m, n + 2k + 1): exemplars, weighted centroids and descriptions, pad
    sims[:, -1] = -np.inf  # the pad: never among a child's nearest
    nearest = np.sort(sims[:, index.knn_columns], axis=2)[:, :, -KNN:]  # (m, k, KNN), pads first
    knn = (np.maximum(nearest, -1.0) * index.knn_weights).sum(axis=2)  # a pad weighs 0 (its -inf made -1)
    return knn + sims[:, n : n + k] + sims[:, n + k : n + 2 * k]


def similarity_logits(index: RoutingIndex, vectors: np.ndarray) -> np.ndarray:
    """(m, k) the staged scorer's similarity scores over its temperature, best child at 0: the
    profiles' evidence a head adds with its `sim` weight (and `routes train` calibrates)."""
    scores = _similarity_scores(index, vectors) / TEMPERATURE
    return scores - scores.max(axis=-1, keepdims=True)


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = (scores - scores.max(axis=-1, keepdims=True)) / TEMPERATURE
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def head_probabilities(index: RoutingIndex, vectors: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(m, k) calibrated child probabilities of the index's head for m unit vectors; `shares` are
    the keyword shares ((k,) or (m, k)). A child the head does not know gets 0."""
    assert index.head is not None and index.head_columns is not None
    sims = similarity_logits(index, vectors) if index.head.sim else None
    return calibrated(index.head, index.head_columns, vectors, shares, sims)


def fast_probabilities(index: RoutingIndex, vectors: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(m, k) the fast head's calibrated child probabilities for m token-encoder vectors (its
    similarity scores against the profiles in the token encoder's space, `index.fast_space`)."""
    assert index.fast is not None and index.fast_columns is not None and index.fast_space is not None
    sims = similarity_logits(index.fast_space, vectors) if index.fast.sim else None
    return calibrated(index.fast, index.fast_columns, vectors, shares, sims)


def calibrated(head: RouteHead, columns: np.ndarray, vectors: np.ndarray, shares: np.ndarray,
               sims: np.ndarray | None) -> np.ndarray:
    """softmax((logits + prior x shares + sim x sims) / T) over the children (`columns`: each
    child's class in `head`, -1 for one it does not know: probability 0)."""
    full = head.logits(vectors)[:, columns] + head.prior * shares
    if sims is not None:
        full += head.sim * sims
    full[:, columns < 0] = -np.inf  # (their column -1 read the last class: not theirs)
    z = full / head.temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _decision(index: RoutingIndex, probs: np.ndarray, stage: str, child: int | None,
              confidence: float | None = None, stopped: str | None = None) -> Decision:
    order = np.argsort(-probs, kind="stable").tolist()
    values = probs.tolist()
    children = index.children
    candidates = tuple((children[i], round(values[i], 4)) for i in order)
    chosen = children[child] if child is not None else None
    if confidence is None:
        confidence = values[child] if child is not None else values[order[0]]
    runner_up = next((candidates[rank] for rank, i in enumerate(order) if i != child), None)
    return Decision(chosen, stage, round(confidence, 4), runner_up, candidates, stopped)


def sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE.split(text)) if len(s) > 2]


def deep_sentences(text: str) -> list[str]:
    """The sentences the deep stage embeds (none for a text of one sentence)."""
    parts = sentences(text)[:MAX_SENTENCES]
    return parts if len(parts) > 1 else []


class TokenVectors(Encoder, Protocol):
    """The token encoder (`routing.tokens.TokenEncoder`): vectors without a model run (`embed` for
    the profiles' texts, `vector` for one question)."""

    def vector(self, text: str) -> np.ndarray: ...


class Classifier:
    """Classify texts against compiled indexes, as sans-IO steps: the caller embeds what a stage
    asks for (`Embed`) with whatever it has (a batcher, a direct encoder), so keyword-decided
    questions never touch the model, nor do those a node's fast head decides (with `tokens`, the
    token encoder, computed inline: no model run). Sentence vectors are kept for the levels below."""

    def __init__(self, tokens: TokenVectors | None = None) -> None:
        self.tokens = tokens
        self._sentences: dict[str, np.ndarray] = {}  # sentence vectors, reused down the hierarchy
        self._token_vector: tuple[str, np.ndarray] | None = None  # the last text's (a walk's levels share it)

    def _remember(self, parts: list[str], vectors: np.ndarray) -> None:
        if len(self._sentences) + len(parts) > SENTENCE_MEMO:
            self._sentences = {}
        self._sentences.update(zip(parts, vectors))

    def _embed_sentences(self, parts: list[str]) -> Generator[Embed, np.ndarray, np.ndarray]:
        cached = {part: self._sentences.get(part) for part in parts}
        found = {part: vector for part, vector in cached.items() if vector is not None}
        missing = [part for part in cached if part not in found]
        if missing:
            fresh = yield Embed(tuple(missing))
            found.update(zip(missing, fresh))
            self._remember(missing, fresh)
        return np.stack([found[part] for part in parts])

    def steps(self, index: RoutingIndex, text: str, embedding: np.ndarray | None = None
              ) -> Generator[Embed, np.ndarray, tuple[Decision, np.ndarray | None]]:
        """Decide among the children of `index`; returns the decision and the sentence vector
        used (None when keywords decided without one), so that a walk down the hierarchy embeds
        a question at most once. A given `embedding` of the index's dimension skips the encoder for
        the whole text (one of another dimension is ignored)."""
        if not index.children:
            return Decision(None, "none", 0.0, None, ()), embedding
        keywords = index.matcher.match(text)
        shares = _keyword_shares(index, keywords)
        top = keywords.top
        if top is not None and keywords.confidence >= index.settings.keyword_threshold:
            child = cast(int, top[0])  # the index's matcher is keyed by child position
            return _decision(index, shares, "keyword", child), embedding
        if embedding is not None and embedding.shape == index.centroids.shape[1:]:
            vector = _unit(embedding)
        else:  # none given, or one of another dimension (a client's: ignored)
            fast = self._fast_decision(index, text, shares)
            if fast is not None:
                return fast, None
            vector = (yield Embed((text,)))[0]
        if index.head is not None:
            return head_decision(index, vector, shares), vector
        scores = _similarity_scores(index, vector[None, :])[0]
        probs = _softmax(scores + KEYWORD_BONUS * shares)
        order = np.argsort(-probs, kind="stable")
        best = int(order[0])
        margin = float(scores[best] - scores[order[1]]) if len(order) > 1 else 1.0
        if probs[best] >= index.embed_threshold(best) and margin >= index.settings.margin_threshold:
            return _decision(index, probs, "embed", best), vector
        return (yield from self._deep(index, text, vector, scores, shares)), vector

    def _fast_decision(self, index: RoutingIndex, text: str, shares: np.ndarray) -> Decision | None:
        """The fast head's decision when it is sure enough: its best child's probability reaches
        its `decide` (and the node's `th.head`); else None (the MiniLM head decides)."""
        if (index.fast is None or index.fast_space is None or self.tokens is None
                or index.settings.exemplar_threshold < 1.0):
            return None
        if self._token_vector is None or self._token_vector[0] != text:
            self._token_vector = (text, self.tokens.vector(text))
        probs = fast_probabilities(index, self._token_vector[1][None, :], shares)[0]
        best = int(np.argmax(probs))
        assert index.fast.decide is not None
        if probs[best] < max(index.fast.decide, index.settings.head_threshold):
            return None
        return _decision(index, probs, "fast", best)

    def _deep(self, index: RoutingIndex, text: str, vector: np.ndarray, scores: np.ndarray,
              shares: np.ndarray) -> Generator[Embed, np.ndarray, Decision]:
        parts = deep_sentences(text)
        distributions = [_softmax(scores)]
        if parts:
            part_scores = _similarity_scores(index, (yield from self._embed_sentences(parts)))
            distributions.extend(_softmax(part_scores))
        probs = np.mean(distributions, axis=0) + DEEP_KEYWORD_BONUS * shares
        probs = probs / probs.sum()
        best = int(np.argmax(probs))
        if float((index.exemplars @ vector).max(initial=-1.0)) < NO_FIT_SIMILARITY and not shares.any():
            return _decision(index, probs, "deep", None)
        return _decision(index, probs, "deep", best)


def head_decision(index: RoutingIndex, vector: np.ndarray, shares: np.ndarray) -> Decision:
    """The exemplar override, else the head's decision (see the module's precedence)."""
    probs = head_probabilities(index, vector[None, :], shares)[0]
    settings = index.settings
    if settings.exemplar_threshold < 1.0 and len(index.exemplars):
        sims = index.exemplars @ vector
        nearest = int(np.argmax(sims))
        if float(sims[nearest]) >= settings.exemplar_threshold:
            return _decision(index, probs, "exemplar", int(index.owners[nearest]), float(sims[nearest]))
    best = int(np.argmax(probs))
    if probs[best] >= settings.head_threshold:
        return _decision(index, probs, "head", best)
    stopped = f"confidence {probs[best]:.2f} < {settings.head_threshold:.2f}"
    return _decision(index, probs, "head", None, stopped=stopped)


def keyword_guess(index: RoutingIndex, text: str, stage: str) -> Decision:
    """The keyword stage's best child at any confidence (`child=None` when no keyword matched),
    labelled `stage`: the decision of a step whose vectors the encoder could not give."""
    if not index.children:
        return Decision(None, stage, 0.0, None, ())
    keywords = index.matcher.match(text)
    top = keywords.top
    child = cast(int, top[0]) if top is not None else None
    return _decision(index, _keyword_shares(index, keywords), stage, child)


def classify(classifier: Classifier, index: RoutingIndex, text: str, encoder: Encoder,
             embedding: np.ndarray | None = None) -> Decision:
    """One node's decision, its steps driven by `encoder` in the caller's thread (tests, tools)."""
    return drive(classifier.steps(index, text, embedding), embed_with(encoder))[0]


def _unit(embedding: np.ndarray) -> np.ndarray:
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector
