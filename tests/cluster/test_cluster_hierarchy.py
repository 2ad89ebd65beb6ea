"""`semdns bench hierarchy`'s generated hierarchies, walked with a stand-in encoder (keywords decide
every step, so no model): a tree of branching 6 takes log6(G) hops, flat takes one, and every
question reaches its own leaf."""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import pytest

from tools.bench_hierarchy import generate, measure, word


class HashEncoder:
    """Deterministic unit vectors from a hash of the text (no model)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
            v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


def test_keywords_are_unique_letters() -> None:
    words = [word(i) for i in range(700)]
    assert len(set(words)) == 700 and all(w.isalpha() for w in words)


@pytest.mark.parametrize(("leaves", "depth"), [(6, 1), (36, 2), (216, 3), (600, 4)])
def test_a_tree_is_log_deep(leaves: int, depth: int) -> None:
    tree = generate(leaves, 6)
    assert tree.depth == depth and len(set(tree.leaves)) == leaves and all(tree.leaves)
    assert generate(leaves, None).depth == 1


@pytest.mark.parametrize("leaves", [36, 216])
def test_every_question_reaches_its_leaf_in_depth_hops(leaves: int) -> None:
    tree_row = measure(leaves, 6, HashEncoder(), questions=12)
    flat_row = measure(leaves, None, HashEncoder(), questions=12)
    assert tree_row.correct == 1.0 and flat_row.correct == 1.0
    assert tree_row.hops == tree_row.depth and flat_row.hops == 1
    assert tree_row.messages == tree_row.depth + 1
