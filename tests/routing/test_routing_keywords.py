"""The Aho-Corasick keyword matcher: boundaries, case folding, longest match, weights, shares."""
from __future__ import annotations

import pytest

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
