"""A deterministic stand-in for the MiniLM encoder (no model): each word adds a fixed random
direction of the encoder's 384 dimensions, so texts sharing words are near each other."""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from zones.head import ENCODER_DIMS


class BagOfWords:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            vector = np.zeros(ENCODER_DIMS)
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
                vector += np.random.default_rng(seed).normal(size=ENCODER_DIMS)
            rows.append(vector / (np.linalg.norm(vector) or 1.0))
        return np.asarray(rows, dtype=np.float32)

    def vector(self, text: str) -> np.ndarray:
        """One text's vector (the token encoder's interface, `routing.classifier.TokenVectors`)."""
        return self.embed([text])[0]
