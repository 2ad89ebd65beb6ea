"""The ONNX export of all-MiniLM-L6-v2 agrees with sentence-transformers; the batch API."""
from __future__ import annotations

import numpy as np
import pytest

from routing.embedder import DIMENSION, _reference_vectors, ensure_onnx, min_cosine, model_dir, onnx_path

SENTENCES = [
    "Can my neighbour's tree roots damaging my driveway be their liability?",
    "how many mg of melatonin is too much for a teenager",
    "Segmentation fault (core dumped) after calling free() twice",
    "A satellite orbits at 400 km; what is its period?",
    "Write a villanelle about a lighthouse keeper's last night.",
    "Should I move my emergency fund into treasury bills?",
    "x",
]


@pytest.mark.model
def test_onnx_matches_sentence_transformers(encoder) -> None:
    reference = _reference_vectors(model_dir(), SENTENCES)
    got = encoder.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), DIMENSION)
    assert min_cosine(got, reference) > 0.999


@pytest.mark.model
def test_int8_variant_stays_close(encoder) -> None:
    from routing.embedder import Embedder

    int8 = Embedder(ensure_onnx("int8"), model_dir() / "tokenizer.json")
    assert onnx_path(variant="int8").is_file()
    assert min_cosine(int8.embed(SENTENCES), encoder.embed(SENTENCES)) > 0.95


def test_batch_is_unit_length_and_padding_free(encoder) -> None:
    batch = encoder.embed(SENTENCES)
    assert batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = encoder.embed([SENTENCES[-1]])[0]
    assert float(alone @ batch[-1]) > 0.9999  # padding in the batch changes nothing
    assert encoder.embed([]).shape == (0, DIMENSION)


def test_cache_file_is_keyed_by_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEMDNS_CACHE", str(tmp_path))
    path = onnx_path()
    assert path.parent == tmp_path
    assert path.name.startswith("minilm-") and len(path.stem) == len("minilm-") + 16


def test_runs_group_texts_of_similar_length() -> None:
    from routing.embedder import plan_runs

    assert plan_runs([]) == []
    assert plan_runs([10]) == [[0]]
    assert plan_runs([12, 10, 11], overhead=16) == [[1, 2, 0]]  # padding costs less than a run
    assert plan_runs([16, 91], overhead=16) == [[0], [1]]  # 91 padded twice costs more than a run
    lengths = [5, 90, 7, 88, 6, 92]
    runs = plan_runs(lengths, overhead=16)
    assert sorted(i for run in runs for i in run) == list(range(6))
    assert [sorted(lengths[i] for i in run) for run in runs] == [[5, 6, 7], [88, 90, 92]]


def test_mixed_lengths_embed_as_each_alone(encoder) -> None:
    texts = ["x", SENTENCES[0] * 4, "short one", SENTENCES[2] * 3]
    batch = encoder.embed(texts)
    alone = np.stack([encoder.embed([text])[0] for text in texts])
    assert min_cosine(batch, alone) > 0.9999


def test_a_long_text_is_read_up_to_max_tokens(encoder) -> None:
    """Only the first `MAX_TOKENS` tokens count (the cost of a run grows with every token): two
    texts that differ only past them embed alike; within them, a difference shows."""
    from routing.embedder import MAX_TOKENS

    assert MAX_TOKENS == 64
    head = " ".join(["the tenant may end the lease early"] * 12)  # 84 words: over 64 tokens, under 256
    a, b = encoder.embed([head + " about my dog", head + " because of a broken heater and mould"])
    assert float(a @ b) > 0.9999
    short = "the tenant may end the lease early"
    c, d = encoder.embed([short + " about my dog", short + " because of a broken heater and mould"])
    assert float(c @ d) < 0.99
