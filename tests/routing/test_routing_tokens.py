"""The token encoder (`routing.tokens`) on the packaged MiniLM: a table row per word piece, built
from the encoder once and cached; unit vectors without a model run, near for texts on one topic."""
from __future__ import annotations

import numpy as np
import pytest

from routing.tokens import MAX_PIECES, TokenEncoder, ensure_table, piece_weights


def cosine(tokens: TokenEncoder, a: str, b: str) -> float:
    return float(tokens.vector(a) @ tokens.vector(b))


def test_vectors_are_unit_and_repeatable(tokens: TokenEncoder) -> None:
    texts = ["What are the side effects of ibuprofen?", "Is a verbal agreement legally binding?"]
    batch = tokens.embed(texts)
    assert batch.shape == (2, 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(batch[0], tokens.vector(texts[0]), rtol=1e-6)
    assert not tokens.vector("").any() and not tokens.embed([""]).any()


def test_texts_on_one_topic_are_nearer(tokens: TokenEncoder) -> None:
    fever = "how do I bring down a high fever in my child"
    near, far = "what medicine lowers a fever", "my C program segfaults on free"
    assert cosine(tokens, fever, near) > cosine(tokens, fever, far)
    contract = "can my landlord keep the deposit under the lease agreement"
    assert cosine(tokens, contract, "is the lease contract binding") > cosine(tokens, contract, "a haiku about rain")


def test_frequent_pieces_weigh_less(tokens: TokenEncoder) -> None:
    weights = piece_weights(30522)
    assert np.all(np.diff(weights) > 0) and weights[0] < 0.05 and weights[-1] > 0.95
    # "the" alone barely moves a question; a rare word does
    base = "side effects of ibuprofen"
    assert cosine(tokens, base, f"the {base}") > cosine(tokens, base, f"aspirin {base}")


def test_a_long_text_is_cut(tokens: TokenEncoder) -> None:
    head = " ".join(["fever"] * MAX_PIECES)
    assert cosine(tokens, head, head + " contract" * 50) == pytest.approx(1.0, abs=1e-6)


def test_the_table_is_built_once_and_kept(tokens: TokenEncoder) -> None:
    path = ensure_table()
    stamp = path.stat().st_mtime_ns
    table = np.load(path)
    assert table.shape == (30522, 384) and table.dtype == np.float16 and np.isfinite(table).all()
    assert ensure_table() == path and path.stat().st_mtime_ns == stamp
