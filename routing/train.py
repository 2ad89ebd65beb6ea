"""Fitting a node's head (`zones.head`) on labelled questions, with numpy alone.

`train_head(vectors, shares, labels, classes)`:
1. for each candidate (`linear` softmax regression, or an `mlp` of one ReLU layer, with an L2
   weight), k-fold cross-validation (stratified, seeded) gives out-of-fold logits; training
   weighs each class by the inverse of its size (class-balanced loss), full-batch Adam;
2. the candidate with the best out-of-fold accuracy (then log-loss) wins; on its out-of-fold
   logits, the weight of the keyword prior (`prior`: logits + prior * keyword shares) and the
   temperature are chosen by log-loss (grid; temperature scaling, Guo et al. 2017), so the
   confidences a node compares with `th.head` are calibrated on questions the model did not see;
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
    Candidate("linear", 1e-4), Candidate("linear", 1e-3), Candidate("linear", 1e-2),
    Candidate("mlp", 1e-4, 128), Candidate("mlp", 1e-3, 128),
)
PRIORS = (0.0, 0.5, 1.0, 2.0, 4.0)
TEMPERATURES = tuple(float(t) for t in np.round(np.exp(np.linspace(np.log(0.2), np.log(5.0), 41)), 4))
STEPS = {"linear": 300, "mlp": 300}
RATE = {"linear": 0.05, "mlp": 0.005}


@dataclass(frozen=True)
class Fit:
    """A trained head and how it was chosen."""

    head: RouteHead
    candidate: Candidate
    cv_accuracy: float  # out-of-fold accuracy of the chosen candidate (with prior and temperature)
    cv_probs: np.ndarray  # (n, classes) calibrated out-of-fold probabilities
    table: tuple[tuple[str, float], ...]  # every candidate's out-of-fold accuracy


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


def folds_of(y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number per row, stratified by label, seeded."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def out_of_fold(x: np.ndarray, y: np.ndarray, classes: int, candidate: Candidate, fold: np.ndarray) -> np.ndarray:
    logits = np.zeros((len(y), classes))
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        logits[test] = _logits(fit_layers(x[train], y[train], classes, candidate, seed=int(k)), x[test])
    return logits


def calibrate(logits: np.ndarray, shares: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(prior, temperature, accuracy) minimising the log-loss of softmax((logits + prior*shares)/T)."""
    best: tuple[float, float, float, float] | None = None
    rows = np.arange(len(y))
    for prior in PRIORS:
        z = logits + prior * shares
        accuracy = float((z.argmax(1) == y).mean())
        for temperature in TEMPERATURES:
            loss = float(-np.log(_softmax(z / temperature)[rows, y] + 1e-12).mean())
            key = (-accuracy, loss)
            if best is None or key < (-best[2], best[3]):
                best = (prior, temperature, accuracy, loss)
    assert best is not None
    return best[0], best[1], best[2]


def train_head(vectors: np.ndarray, shares: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
               folds: int = 5, candidates: tuple[Candidate, ...] = CANDIDATES, serial: int = 1) -> Fit:
    """Choose, calibrate and fit a head (see the module docstring). `labels` index `classes`."""
    with _one_blas_thread():
        return _train_head(np.asarray(vectors, dtype=np.float32), np.asarray(shares, dtype=np.float32), labels,
                           classes, folds, candidates, serial)


def _train_head(x: np.ndarray, shares: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], folds: int,
                candidates: tuple[Candidate, ...], serial: int) -> Fit:
    k = len(classes)
    folds = max(2, min(folds, int(np.bincount(labels, minlength=k).min())))
    fold = folds_of(labels, folds)
    table = []
    chosen: tuple[float, Candidate, np.ndarray] | None = None
    for candidate in candidates:
        logits = out_of_fold(x, labels, k, candidate, fold)
        prior, temperature, accuracy = calibrate(logits, shares, labels)
        table.append((str(candidate), accuracy))
        if chosen is None or accuracy > chosen[0] + 1e-9:
            chosen = (accuracy, candidate, logits)
    assert chosen is not None
    accuracy, candidate, logits = chosen
    prior, temperature, accuracy = calibrate(logits, shares, labels)
    layers = fit_layers(x, labels, k, candidate, seed=folds)
    probs = _softmax((logits + prior * shares) / temperature)
    head = RouteHead(classes, candidate.kind, layers, temperature, prior, serial,
                     info={"cv": f"{accuracy:.4f}", "rows": str(len(labels))})
    return Fit(head, candidate, accuracy, probs, tuple(table))


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
