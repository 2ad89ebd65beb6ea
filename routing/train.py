"""Fitting a node's head (`zones.head`) on labelled questions, with numpy alone.

`train_head(vectors, shares, labels, classes, sims=, groups=)`:
1. for each candidate (`linear` softmax regression, or an `mlp` of one ReLU layer, with an L2
   weight), k-fold cross-validation gives out-of-fold logits: folds hold out whole sources when
   `groups` are given (what a question from a source nobody trained on meets; rows of group -1,
   the profiles' own exemplars, are always trained on), else stratified rows; training weighs
   each class by the inverse of its size (class-balanced loss), full-batch Adam;
2. on each candidate's out-of-fold logits, the weight of the keyword prior (`prior`: + prior *
   keyword shares) and of the profiles' similarity (`sim`: + sim * similarity logits) are chosen
   by accuracy, the temperature by log-loss (grid; temperature scaling, Guo et al. 2017), so the
   confidences a node compares with `th.head` are calibrated on questions the model did not see;
   the candidate with the best calibrated out-of-fold accuracy wins;
3. the winner is refitted on every question and returned as a `RouteHead`, with the
   cross-validated accuracy and the out-of-fold probabilities (for the coverage–accuracy curve).
Model selection uses the training questions only (never an evaluation set).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import numpy as np

from zones.head import RouteHead


@dataclass(frozen=True)
class Candidate:
    kind: str  # "linear" | "mlp"
    l2: float
    hidden: int = 0

    def __str__(self) -> str:
        return f"{self.kind}{self.hidden or ''}(l2={self.l2:g})"


CANDIDATES = (
    Candidate("linear", 1e-3), Candidate("linear", 1e-2), Candidate("linear", 3e-2), Candidate("mlp", 1e-3, 128),
)
PRIORS = (0.0, 0.5, 1.0, 2.0, 4.0)
SIMS = (0.0, 0.25, 0.5, 1.0, 2.0)
TEMPERATURES = tuple(float(t) for t in np.round(np.exp(np.linspace(np.log(0.2), np.log(5.0), 41)), 4))
STEPS = {"linear": 300, "mlp": 300}
RATE = {"linear": 0.05, "mlp": 0.005}


@dataclass(frozen=True)
class Fit:
    """A trained head and how it was chosen."""

    head: RouteHead
    candidate: Candidate
    cv_accuracy: float  # out-of-fold accuracy of the chosen candidate (with prior and temperature)
    cv_probs: np.ndarray  # (tested rows, classes) calibrated out-of-fold probabilities
    table: tuple[tuple[str, float], ...]  # every candidate's out-of-fold accuracy
    cv_rows: np.ndarray  # (n,) True for the rows cv_probs covers (rows never held out are not)


def _one_blas_thread() -> ContextManager[object]:
    """Small matrix products run far faster on one BLAS thread than on many contending ones
    (threadpoolctl, when installed; else the BLAS default)."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fit_layers(x: np.ndarray, y: np.ndarray, classes: int, candidate: Candidate, seed: int = 0
               ) -> tuple[np.ndarray, ...]:
    """Class-balanced softmax regression (or one hidden ReLU layer) by full-batch Adam."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    weights = (len(y) / (classes * np.maximum(counts, 1.0)))[y]
    weights = (weights / weights.sum()).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    x = np.asarray(x, dtype=np.float32)
    d = x.shape[1]
    if candidate.kind == "mlp":
        h = candidate.hidden
        params = [rng.normal(0, np.sqrt(2.0 / d), (h, d)), np.zeros(h),
                  rng.normal(0, np.sqrt(1.0 / h), (classes, h)), np.zeros(classes)]
    else:
        params = [np.zeros((classes, d)), np.zeros(classes)]
    params = [p.astype(np.float32) for p in params]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    rate, beta1, beta2 = RATE[candidate.kind], 0.9, 0.999
    for step in range(1, STEPS[candidate.kind] + 1):
        if candidate.kind == "mlp":
            w1, b1, w2, b2 = params
            hidden = np.maximum(x @ w1.T + b1, 0.0)
            delta = (_softmax(hidden @ w2.T + b2) - onehot) * weights[:, None]
            back = (delta @ w2) * (hidden > 0)
            grads = [back.T @ x + candidate.l2 * w1, back.sum(0), delta.T @ hidden + candidate.l2 * w2, delta.sum(0)]
        else:
            w, b = params
            delta = (_softmax(x @ w.T + b) - onehot) * weights[:, None]
            grads = [delta.T @ x + candidate.l2 * w, delta.sum(0)]
        for i, (grad, (m, v)) in enumerate(zip(grads, moments)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            params[i] = params[i] - rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return tuple(p.astype(np.float32) for p in params)


def _logits(layers: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    if len(layers) == 4:
        w1, b1, w2, b2 = layers
        return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2
    w, b = layers
    return x @ w.T + b


def folds_of(y: np.ndarray, folds: int, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """A fold number per row. Without `groups`: stratified by label, seeded. With `groups` (an id
    per row, -1 for rows that are always trained on and never tested): whole groups go to one
    fold each, largest first into the smallest fold, so a fold's questions come from sources the
    rest never saw (-1 stays -1)."""
    fold = np.zeros(len(y), dtype=np.int64)
    if groups is not None:
        fold[:] = -1
        ids, sizes = np.unique(groups[groups >= 0], return_counts=True)
        load = np.zeros(folds)
        for gid in ids[np.argsort(-sizes, kind="stable")]:
            target = int(np.argmin(load))
            fold[groups == gid] = target
            load[target] += int((groups == gid).sum())
        return fold
    rng = np.random.default_rng(seed)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def out_of_fold(x: np.ndarray, y: np.ndarray, classes: int, candidate: Candidate, fold: np.ndarray) -> np.ndarray:
    """Logits of every row with a fold >= 0 from a model that did not see its fold (0 elsewhere)."""
    logits = np.zeros((len(y), classes), dtype=np.float32)
    for k in np.unique(fold[fold >= 0]):
        train, test = fold != k, fold == k
        logits[test] = _logits(fit_layers(x[train], y[train], classes, candidate, seed=int(k)), x[test])
    return logits


@dataclass(frozen=True)
class Calibration:
    prior: float
    sim: float
    temperature: float
    accuracy: float

    def probabilities(self, logits: np.ndarray, shares: np.ndarray, sims: np.ndarray) -> np.ndarray:
        return _softmax((logits + self.prior * shares + self.sim * sims) / self.temperature)


def calibrate(logits: np.ndarray, shares: np.ndarray, y: np.ndarray, sims: np.ndarray | None = None) -> Calibration:
    """The prior and similarity weights (by accuracy, then log-loss) and the temperature (by
    log-loss) of softmax((logits + prior*shares + sim*sims) / T) on out-of-fold logits."""
    best: tuple[tuple[float, float], Calibration] | None = None
    rows = np.arange(len(y))
    for prior in PRIORS:
        for sim in SIMS if sims is not None else (0.0,):
            z = logits + prior * shares + (sim * sims if sims is not None else 0.0)
            accuracy = float((z.argmax(1) == y).mean())
            if best is not None and accuracy < best[1].accuracy - 1e-9:
                continue
            for temperature in TEMPERATURES:
                loss = float(-np.log(_softmax(z / temperature)[rows, y] + 1e-12).mean())
                key = (-accuracy, loss)
                if best is None or key < best[0]:
                    best = (key, Calibration(prior, sim, temperature, accuracy))
    assert best is not None
    return best[1]


def train_head(vectors: np.ndarray, shares: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
               folds: int = 5, candidates: tuple[Candidate, ...] = CANDIDATES, serial: int = 1,
               sims: np.ndarray | None = None, groups: np.ndarray | None = None) -> Fit:
    """Choose, calibrate and fit a head (see the module docstring). `labels` index `classes`;
    `sims` are the profiles' similarity logits (`classifier.similarity_logits`) when the head may
    lean on them; `groups` the source of each row (-1: always trained on) for source-held-out folds."""
    with _one_blas_thread():
        x = np.asarray(vectors, dtype=np.float32)
        k = len(classes)
        if groups is not None and len(np.unique(groups[groups >= 0])) >= 2:
            fold = folds_of(labels, min(folds, len(np.unique(groups[groups >= 0]))), groups=groups)
        else:
            folds = max(2, min(folds, int(np.bincount(labels, minlength=k).min())))
            fold = folds_of(labels, folds)
        tested = fold >= 0
        shares = np.asarray(shares, dtype=np.float32)
        sims = np.asarray(sims, dtype=np.float32) if sims is not None else None
        sub_sims = sims[tested] if sims is not None else None
        table = []
        chosen: tuple[Calibration, Candidate, np.ndarray] | None = None
        for candidate in candidates:
            logits = out_of_fold(x, labels, k, candidate, fold)
            calibration = calibrate(logits[tested], shares[tested], labels[tested], sub_sims)
            table.append((str(candidate), calibration.accuracy))
            if chosen is None or calibration.accuracy > chosen[0].accuracy + 1e-9:
                chosen = (calibration, candidate, logits)
        assert chosen is not None
        calibration, candidate, logits = chosen
        layers = fit_layers(x, labels, k, candidate, seed=folds)
    probs = calibration.probabilities(logits[tested], shares[tested],
                                      sub_sims if sub_sims is not None else np.zeros_like(shares[tested]))
    head = RouteHead(classes, candidate.kind, layers, calibration.temperature, calibration.prior, serial,
                     sim=calibration.sim, info={"cv": f"{calibration.accuracy:.4f}", "rows": str(len(labels))})
    return Fit(head, candidate, calibration.accuracy, probs, tuple(table), tested)


def coverage_curve(confidence: np.ndarray, correct: np.ndarray,
                   thresholds: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
                   ) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy of the covered) for each threshold: a question is covered
    when its confidence reaches the threshold (routed all the way rather than stopped)."""
    rows = []
    for threshold in thresholds:
        covered = confidence >= threshold
        share = float(covered.mean()) if len(covered) else 0.0
        accuracy = float(correct[covered].mean()) if covered.any() else float("nan")
        rows.append((threshold, share, accuracy))
    return rows


DECIDE_GRID = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2)) + (0.97, 0.99)


@dataclass(frozen=True)
class Decide:
    """Where a fast head may decide alone, from out-of-fold predictions (`choose_decide`)."""

    threshold: float  # its best child's probability at or above which it decides
    share: float  # of the tested questions, the share it decides
    fast_accuracy: float  # accuracy of its decisions on that share
    head_accuracy: float  # accuracy of the head on the same questions
    cascade_accuracy: float  # fast where it decides, the head elsewhere
    head_alone: float  # the head on every tested question


def choose_decide(fast: np.ndarray, head: np.ndarray, labels: np.ndarray,
                  grid: tuple[float, ...] = DECIDE_GRID) -> Decide | None:
    """The lowest threshold of `grid` at which a fast head may decide alone: on the questions whose
    fast probability reaches it, the fast head is at least as accurate as the head, and the cascade
    (fast there, the head elsewhere) at least as accurate as the head alone. `fast`, `head`: (n, k)
    out-of-fold probabilities of the same questions, `labels` their classes. None when no threshold
    of the grid qualifies (the node gets no fast head)."""
    fast_right = fast.argmax(axis=1) == labels
    head_right = head.argmax(axis=1) == labels
    confidence = fast.max(axis=1)
    alone = float(head_right.mean())
    for threshold in grid:
        decides = confidence >= threshold
        if not decides.any():
            continue
        cascade = float(np.where(decides, fast_right, head_right).mean())
        if fast_right[decides].mean() >= head_right[decides].mean() and cascade >= alone:
            return Decide(threshold, float(decides.mean()), float(fast_right[decides].mean()),
                          float(head_right[decides].mean()), cascade, alone)
    return None
