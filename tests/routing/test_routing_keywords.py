"""The Aho-Corasick keyword matcher: boundaries, case folding, longest match, weights, shares."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import normalize as normalise
from routing.keywords import KeywordMatcher, keyword_weight

MATCHER = KeywordMatcher({
    "code": ["python", "function", "c++", "stack trace"],
    "science": ["work function", "pressure", "mole of"],
    "medical": ["blood pressure", "mole", "dose"],
    "shared": ["python"],
})


def test_normalise_folds_case_width_and_spaces() -> None:
    assert normalise("  ＰＹＴＨＯＮ\tStraße  ") == "python strasse"


def test_word_boundaries() -> None:
    assert MATCHER.match("pythonic dosed moles").scores == {}
    assert set(MATCHER.match("my Python code").matches) == {"python"}


def test_punctuation_keyword_matches_next_to_spaces() -> None:
    assert MATCHER.match("a C++ template").scores == {"code": 1.0}


def test_longest_match_hides_contained_keyword() -> None:
    result = MATCHER.match("What is the work function of sodium?")
    assert result.matches == ("work function",)
    assert result.top == ("science", 1.5)
    result = MATCHER.match("my blood pressure is high")
    assert result.scores == {"medical": 1.5}
    assert MATCHER.match("one mole of gas").scores == {"science": 1.5}
    assert MATCHER.match("a mole on my arm").scores == {"medical": 1.0}


def test_shared_keyword_is_split_and_counted_once() -> None:
    result = MATCHER.match("python python python")
    assert result.scores == {"code": 0.5, "shared": 0.5}


def test_weights_share_and_confidence() -> None:
    assert keyword_weight("stack trace") == 1.5
    result = MATCHER.match("a stack trace from my function, and a dose")
    assert result.scores == {"code": 2.5, "medical": 1.0}
    assert result.share == pytest.approx(2.5 / 3.5)
    assert result.confidence == pytest.approx(2.5 / 3.5 * 2.5 / 3.5)
    assert MATCHER.match("nothing here").confidence == 0.0
    assert KeywordMatcher({}).match("python").scores == {}


def _pairwise(matcher: KeywordMatcher, text: str) -> dict:
    """The matcher's rule as first written: each match, longest first, checked against every
    match taken before it (quadratic in the matches: a 64 KB question of one keyword took
    seconds)."""
    norm = normalise(text)
    found = []
    for end, (word, children, weight) in matcher._automaton.iter(norm):
        start = end - len(word) + 1
        if (not word[0].isalnum() or start == 0 or not norm[start - 1].isalnum()) and \
                (not word[-1].isalnum() or end + 1 == len(norm) or not norm[end + 1].isalnum()):
            found.append((start, end, word, children, weight))
    found.sort(key=lambda m: (-(m[1] - m[0]), m[0]))
    taken: list[tuple[int, int]] = []
    scores: dict = {}
    seen: set[str] = set()
    for start, end, word, children, weight in found:
        if any(start <= t_end and t_start <= end for t_start, t_end in taken):
            continue
        taken.append((start, end))
        if word not in seen:
            seen.add(word)
            for child in children:
                scores[child] = scores.get(child, 0.0) + weight
    return scores


WORDS = ["python", "function", "work", "work function", "blood", "pressure", "mole", "of", "c++", "stack",
         "trace", "dose", "the", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40), st.sampled_from([" ", "  ", ", ", "-", ""]))
def test_overlaps_resolve_as_the_pairwise_rule(words: list[str], glue: str) -> None:
    """The overlap check by a map of taken characters gives what checking each match against
    every taken one gave, on texts dense in overlapping and adjacent keywords."""
    text = glue.join(words)
    assert MATCHER.match(text).scores == _pairwise(MATCHER, text)


def test_many_matches_are_all_counted_once() -> None:
    """9,000 matches of two keywords in a 64 KB text: each distinct keyword still counts once."""
    assert MATCHER.match("python dose " * 5000).scores == {"code": 0.5, "shared": 0.5, "medical": 1.0}
