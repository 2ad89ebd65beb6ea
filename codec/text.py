"""Question text: how large it may be, and its normal form (ARCHITECTURE §7.2, §7.3).

Size
    A question is at most `MAX_TEXT_OCTETS` (65,000) octets of UTF-8 as sent, and its compatibility
    decomposition (NFKD) at most `MAX_DECOMPOSED` (65,000) code points. The second bound is the one
    that makes normalisation cheap to refuse: NFKC can multiply the length of a text (U+FDFA becomes
    18 characters), and NFKD's length is additive (a text's is the sum of its pieces'), so
    `check_size` measures it piece by piece and stops as soon as the sum passes the bound. Refusing an
    expanding text therefore costs no more than decomposing 65,000 code points, and a text that
    passes costs no more to normalise than the largest text without compatibility characters.
    Only compatibility characters (U+FDFA, ligatures, vulgar fractions ...) and a few precomposed
    letters with two marks (U+01D5 ...: 1.5 code points per octet) can reach the second bound first.

Normalisation
    ``normalize(t)``: Unicode NFKC, case folding, NFKC again (repeated until stable), then every
    run of whitespace becomes one space and the ends are stripped.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from codec.errors import TextTooLarge

__all__ = ["MAX_DECOMPOSED", "MAX_EXPANSION", "MAX_TEXT_OCTETS", "check_size", "normalize"]

MAX_TEXT_OCTETS = 65000
MAX_DECOMPOSED = 65000
MAX_EXPANSION = 18  # the longest NFKD of one code point (U+FDFA); tests check it for this Unicode version
_PIECE = 1024  # code points decomposed at a time: at most 18,432 out before the bound is checked


def check_size(text: str) -> None:
    """Raise `TextTooLarge` for text over either bound (see the module docstring), without ever
    decomposing more than `MAX_DECOMPOSED` code points plus one piece."""
    if len(text) > MAX_TEXT_OCTETS:  # more characters than octets allowed: no need to encode it
        raise TextTooLarge(f"the question has {len(text)} characters, more than {MAX_TEXT_OCTETS} octets of UTF-8")
    octets = len(text.encode("utf-8", "surrogatepass"))
    if octets > MAX_TEXT_OCTETS:
        raise TextTooLarge(f"the question has {octets} octets of UTF-8, more than {MAX_TEXT_OCTETS}")
    if len(text) * MAX_EXPANSION <= MAX_DECOMPOSED:
        return
    total = 0
    for start in range(0, len(text), _PIECE):
        total += len(unicodedata.normalize("NFKD", text[start:start + _PIECE]))
        if total > MAX_DECOMPOSED:
            raise TextTooLarge(f"the question expands past {MAX_DECOMPOSED} characters under Unicode "
                               f"compatibility decomposition (NFKD; U+FDFA alone is {MAX_EXPANSION})")


@lru_cache(maxsize=128)
def normalize(text: str) -> str:
    """NFKC + casefold, whitespace runs -> one space, stripped (iterated to a fixed point).

    Raises `TextTooLarge` (`check_size`) before any normalising. Remembered for the last
    questions: one question is normalised by the decoder, the hash check of the EDNS form and the
    keyword matcher of every level it passes."""
    check_size(text)
    current = text
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", current).casefold())
        nxt = " ".join(folded.split())
        if nxt == current:
            break
        current = nxt
    return current
