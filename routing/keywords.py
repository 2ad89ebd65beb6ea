"""A compiled multi-pattern keyword matcher (Aho-Corasick) giving per-child scores.

Text and keywords are normalised as the codec normalises questions (`codec.normalize`: NFKC,
case-folded, whitespace-collapsed). A keyword matches
only on word boundaries (where its first/last character is alphanumeric, the neighbouring text
character must not be). Overlapping matches are resolved longest-first, so "work function"
hides "function" and "blood pressure" hides "pressure". Each distinct keyword counts once; its
weight grows with its word count and is split between the children that share it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Hashable, Iterable, Mapping

import ahocorasick

from codec import normalize


def keyword_weight(keyword: str) -> float:
    """Longer phrases are stronger evidence: 1 for a word, +0.5 per extra word."""
    return 1.0 + 0.5 * (len(keyword.split(" ")) - 1)


@dataclass(frozen=True)
class KeywordResult:
    """Scores per child (only children with a match), their share of the total, and the matches."""

    scores: Mapping[Hashable, float]
    matches: tuple[str, ...]

    @cached_property
    def total(self) -> float:
        return sum(self.scores.values())

    def ranked(self) -> list[tuple[Hashable, float]]:
        return list(self._ranked)

    @cached_property
    def _ranked(self) -> tuple[tuple[Hashable, float], ...]:
        return tuple(sorted(self.scores.items(), key=lambda item: (-item[1], str(item[0]))))

    @cached_property
    def top(self) -> tuple[Hashable, float] | None:
        return self._ranked[0] if self._ranked else None

    @property
    def share(self) -> float:
        """The top child's share of all keyword evidence (0 with no match)."""
        total = self.total
        return self.top[1] / total if self.top and total else 0.0

    @property
    def confidence(self) -> float:
        """Share of the evidence, discounted when there is little of it: share * top / (top + 1)."""
        if not self.top:
            return 0.0
        top = self.top[1]
        return self.share * top / (top + 1.0)


class KeywordMatcher:
    """Compiled once from `{child: keywords}`; `match(text)` is sub-millisecond."""

    def __init__(self, keywords: Mapping[Hashable, Iterable[str]]) -> None:
        owners: dict[str, list[Hashable]] = {}
        for child, words in keywords.items():
            for word in words:
                norm = normalize(word)
                if norm and child not in owners.setdefault(norm, []):
                    owners[norm].append(child)
        self._automaton = ahocorasick.Automaton()
        for norm, children in owners.items():
            self._automaton.add_word(norm, (norm, tuple(children), keyword_weight(norm) / len(children)))
        self._empty = not owners
        if not self._empty:
            self._automaton.make_automaton()

    def match(self, text: str) -> KeywordResult:
        if self._empty:
            return KeywordResult(scores={}, matches=())
        norm = normalize(text)
        found: list[tuple[int, int, str, tuple[Hashable, ...], float]] = []
        for end, (word, children, weight) in self._automaton.iter(norm):
            start = end - len(word) + 1
            if _bounded(norm, start, end, word):
                found.append((start, end, word, children, weight))
        found.sort(key=lambda m: (-(m[1] - m[0]), m[0]))
        taken = bytearray(len(norm))  # 1 where a match already taken lies: each check costs its length
        scores: dict[Hashable, float] = {}
        seen: set[str] = set()
        for start, end, word, children, weight in found:
            if 1 in taken[start : end + 1]:
                continue
            taken[start : end + 1] = b"\x01" * (end + 1 - start)
            if word in seen:
                continue
            seen.add(word)
            for child in children:
                scores[child] = scores.get(child, 0.0) + weight
        return KeywordResult(scores=scores, matches=tuple(sorted(seen)))


def _bounded(text: str, start: int, end: int, word: str) -> bool:
    if word[0].isalnum() and start > 0 and text[start - 1].isalnum():
        return False
    if word[-1].isalnum() and end + 1 < len(text) and text[end + 1].isalnum():
        return False
    return True
