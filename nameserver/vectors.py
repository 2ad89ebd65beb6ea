"""Which embedding vectors may take part in a routing decision.

A vector from the wire (EDNS option 65002) or from a local encoder is used only when it has the
shape of this server's encoder (`routing.embedder.DIMENSION` values), every value finite, and unit
length within `NORM_TOLERANCE` (the encoder L2-normalises; int8 quantisation keeps the norm within
about 1%). Anything else is ignored, never an error: the server embeds the text itself instead.
"""
from __future__ import annotations

import numpy as np

from routing.embedder import DIMENSION

NORM_TOLERANCE = 0.05


def usable(vector: np.ndarray) -> np.ndarray | None:
    """`vector` as a flat float32 array when it passes the checks above, else None."""
    vec = np.asarray(vector, dtype=np.float32).ravel()
    if vec.size != DIMENSION or not np.all(np.isfinite(vec)):
        return None
    if abs(float(np.linalg.norm(vec)) - 1.0) > NORM_TOLERANCE:
        return None
    return vec


def normalized(vector: np.ndarray) -> np.ndarray | None:
    """A vector this server computed itself, scaled to unit length, when it is `usable` then."""
    vec = np.asarray(vector, dtype=np.float32).ravel()
    with np.errstate(all="ignore"):
        norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return usable(vec / norm)
