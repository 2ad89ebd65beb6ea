"""onnxruntime behind plain synchronous calls: sentence embeddings and text classification.

A model takes tokenised text (`input_ids`, `attention_mask`, optionally `token_type_ids`, int64)
and produces either
- embeddings: an output named `sentence_embedding` ([batch, dim]) or token states
  ([batch, tokens, dim], mean-pooled over the attention mask), L2-normalised; or
- logits: when the model's metadata has `labels` (a JSON list of label names), its first output is
  [batch, len(labels)] logits, turned into softmax scores per label.
The tokenizer is a Hugging Face `tokenizer.json` (by default next to the model file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.cores import model_threads
from engines.errors import EngineStartupError, ModelFileError
from engines.models import check_onnx

LABELS_METADATA_KEY = "labels"
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_LENGTH = 256


@dataclass(frozen=True)
class OnnxSettings:
    path: Path
    tokenizer: Path | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    n_threads: int = field(default_factory=model_threads)  # the usable cores less one (`common.cores`)

    @property
    def tokenizer_path(self) -> Path:
        return self.tokenizer if self.tokenizer is not None else self.path.with_name("tokenizer.json")


@dataclass(frozen=True)
class Classification:
    label: str
    scores: tuple[tuple[str, float], ...]


class OnnxBackend:
    """One ONNX model and its tokenizer; call only from the worker thread."""

    def __init__(self, settings: OnnxSettings, model_id: str) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        check_onnx(settings.path)
        tokenizer_path = settings.tokenizer_path
        if not tokenizer_path.is_file():
            raise ModelFileError(f"tokenizer file {tokenizer_path}: does not exist (pass --tokenizer FILE)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.n_threads
        try:
            self._session = onnxruntime.InferenceSession(
                str(settings.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable models
            raise ModelFileError(f"model file {settings.path}: onnxruntime cannot load it ({exc})") from exc
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:
            raise ModelFileError(f"tokenizer file {tokenizer_path}: cannot be loaded ({exc})") from exc
        self._tokenizer.enable_truncation(max_length=settings.max_length)
        self._tokenizer.enable_padding()
        self._inputs = [i.name for i in self._session.get_inputs()]
        missing = [name for name in self._inputs if name not in TOKEN_INPUTS]
        if missing:
            raise EngineStartupError(
                f"model file {settings.path}: unsupported inputs {missing} (expected {TOKEN_INPUTS})"
            )
        self._outputs = [o.name for o in self._session.get_outputs()]
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = _labels(metadata.get(LABELS_METADATA_KEY), settings.path)
        self.model_id = model_id

    @property
    def kind(self) -> str:
        return "classifier" if self.labels else "embedder"

    def embed(self, texts: tuple[str, ...]) -> tuple[np.ndarray, int]:
        """L2-normalised embeddings [len(texts), dim] and the number of tokens processed."""
        feeds, mask = self._feeds(texts)
        name = "sentence_embedding" if "sentence_embedding" in self._outputs else self._outputs[0]
        (out,) = self._session.run([name], feeds)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 3:
            weights = mask[..., None].astype(np.float32)
            out = (out * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None), int(mask.sum())

    def classify(self, texts: tuple[str, ...]) -> tuple[list[Classification], int]:
        feeds, mask = self._feeds(texts)
        (logits,) = self._session.run([self._outputs[0]], feeds)
        logits = np.asarray(logits, dtype=np.float64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        results = []
        for row in probs:
            order = np.argsort(-row)
            scores = tuple((self.labels[i], float(row[i])) for i in order)
            results.append(Classification(label=scores[0][0], scores=scores))
        return results, int(mask.sum())

    def _feeds(self, texts: tuple[str, ...]) -> tuple[dict[str, Any], np.ndarray]:
        encodings = self._tokenizer.encode_batch(list(texts))
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: arrays[name] for name in self._inputs}, arrays["attention_mask"]


def _labels(raw: str | None, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    try:
        labels = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model file {path}: metadata 'labels' is not JSON ({exc})") from exc
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelFileError(f"model file {path}: metadata 'labels' must be a non-empty JSON list of strings")
    return tuple(labels)
