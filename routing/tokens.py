"""The token encoder: a question's vector as a weighted sum of per-piece vectors (no model run).

Each of MiniLM's 30,522 word pieces gets one 384-value vector, read once from the encoder itself:
the exported fp32 graph of the whole model (`routing.embedder`; routing's MiniLM runs fewer layers)
run on `[CLS] <piece> [SEP]`. The table is centred (the mean over the vocabulary removed, so that
unrelated texts do not all look alike) and each row weighted by a smooth inverse frequency,
`a / (a + 1 / (id + 10))`: BERT numbers its word pieces roughly by frequency, so the weight quiets
"the", "of" and punctuation and leaves rare pieces whole.
A text's vector is the sum of its pieces' rows, L2-normalised: tens of microseconds, no thread.
The table is stored as float16 (23 MB) and held as float32 (47 MB a process): numpy sums float16
rows about 8x slower.

It is the input of a node's fast head (`zones.head`, `_fast._head._route`), which decides alone only
where cross-validation found it at least as accurate as the MiniLM head (ARCHITECTURE §4); every
other use of a sentence vector (exemplars, the MiniLM head, the resolver's semantic cache, option
65002) stays MiniLM's. The table is built on first use (about 15 s on 2 cores) and kept in the
encoder cache directory, keyed by the weights' digest like the ONNX graphs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from common.buildlock import build_lock
from routing.embedder import (
    DIMENSION,
    EmbedderError,
    cache_dir,
    ensure_onnx,
    model_dir,
    unpadded_inputs,
    weights_digest,
)
from routing.pieces import WordPieces, word_pieces

MAX_PIECES = 256  # pieces of a text that count (the rest is cut; cost is linear in them)
SMOOTHING = 1e-3  # `a` of the inverse-frequency weight
BUILD_BATCH = 2048


def table_path(source: Path, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"tokens-{weights_digest(source)}.npy"


def piece_weights(size: int) -> np.ndarray:
    """The inverse-frequency weight of each piece id (see the module docstring)."""
    ids = np.arange(size, dtype=np.float64)
    return (SMOOTHING / (SMOOTHING + 1.0 / (ids + 10.0))).astype(np.float32)


def build_table(onnx_file: Path, pieces: WordPieces) -> np.ndarray:
    """(vocabulary, 384) float32: each piece's pooled vector from the graph, centred and weighted."""
    import onnxruntime

    size = pieces.vocab_size()
    cls, sep = (pieces.token_to_id(piece) for piece in ("[CLS]", "[SEP]"))
    if cls is None or sep is None:
        raise EmbedderError("the tokenizer has no [CLS] or [SEP] piece")
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    raw = np.zeros((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, BUILD_BATCH):
        ids = np.arange(start, min(size, start + BUILD_BATCH), dtype=np.int64)
        feed = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        (raw[start:start + len(ids)],) = session.run(["sentence_embedding"], unpadded_inputs(feed))
    return (raw - raw.mean(axis=0)) * piece_weights(size)[:, None]


def ensure_table(source: Path | None = None, cache: Path | None = None) -> Path:
    """The cached table of the packaged encoder, built on first use (atomic write; one process
    builds it while the others wait, `common.buildlock`)."""
    source = source or model_dir()
    target = table_path(source, cache)
    if target.is_file():
        return target
    with build_lock(target):
        if not target.is_file():  # built by another process while this one waited
            _write_table(source, cache, target)
    return target


def _write_table(source: Path, cache: Path | None, target: Path) -> None:
    table = build_table(ensure_onnx("fp32", source, cache), word_pieces(source / "tokenizer.json"))
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # a file object: np.save would add ".npy" to a path
            np.save(handle, table.astype(np.float16))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class TokenEncoder:
    """`embed(texts)` -> (n, 384) unit float32 vectors from the token table (`vector` for one)."""

    def __init__(self, table: np.ndarray, tokenizer_file: Path) -> None:
        if table.ndim != 2 or table.shape[1] != DIMENSION:
            raise EmbedderError(f"token table of shape {table.shape}, expected (pieces, {DIMENSION})")
        self._table = np.ascontiguousarray(table, dtype=np.float32)  # float16 arithmetic is ~8x slower
        self._pieces = word_pieces(tokenizer_file)  # shared with MiniLM's encoder: a question is tokenised once
        if self._pieces.vocab_size() != len(self._table):
            raise EmbedderError(f"token table of {len(self._table)} rows for a vocabulary of "
                                f"{self._pieces.vocab_size()}")

    def vector(self, text: str) -> np.ndarray:
        return self._pool(self._pieces.ids(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, ids in enumerate(self._pieces.batch(texts)):
            out[row] = self._pool(ids)
        return out

    def _pool(self, ids: list[int]) -> np.ndarray:
        ids = ids[:MAX_PIECES]
        if not ids:
            return np.zeros(DIMENSION, dtype=np.float32)
        summed = self._table[ids].sum(axis=0)
        norm = float(np.linalg.norm(summed))
        return summed / norm if norm > 0.0 else summed


def load_token_encoder(source: Path | None = None, cache: Path | None = None) -> TokenEncoder:
    """The token encoder of the packaged MiniLM (the table built on first use)."""
    source = source or model_dir()
    try:
        table = np.load(ensure_table(source, cache))
    except (OSError, ValueError, EOFError) as exc:
        raise EmbedderError(f"token table: {exc}") from exc
    return TokenEncoder(table, source / "tokenizer.json")
