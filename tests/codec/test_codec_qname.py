"""QNAME form: exact round trip, limits, LDH output, case-insensitivity, bad names."""
from __future__ import annotations

import dataclasses
import random
import re

import dns.name
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from codec import (
    BadEncoding,
    EmptyText,
    HashedName,
    NotSemantic,
    TextTooLong,
    normalize,
    parse_semantic_name,
    qname_to_text,
    text_to_qname,
)

ZONES = st.sampled_from(
    ["semantic.root.", "legal.semantic.root", "contract.legal.semantic.root.", "q.explain.example.",
     "Legal.Semantic.Root.", "."]
)
PUNCT = "?,.'!-\"():;/&%#$~+*@=_\u2019"
# Mostly ASCII words and punctuation, with whitespace of every kind and any Unicode now and then.
TEXTS = st.one_of(
    st.lists(
        st.text(alphabet="abcqu xyz0123456789" + PUNCT + "\t\n\u00a0\u2003é", min_size=1, max_size=20), max_size=12
    ).map(" ".join),
    st.text(max_size=80),
    st.lists(st.text(alphabet="abcdefqu?'.-", min_size=1, max_size=70), min_size=1, max_size=40).map(" ".join),
)
LDH = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def fits(text: str, zone: str) -> str | None:
    try:
        return text_to_qname(text, zone)
    except (TextTooLong, EmptyText):
        return None


@settings(max_examples=400, deadline=None)
@given(TEXTS, ZONES)
@example("explain", "semantic.root.")
@example("h " + "a" * 32, "semantic.root.")
@example("q qu qq iraq quq", "semantic.root.")
@example("x" * 200, "semantic.root.")
def test_round_trip_is_exact_for_every_text_that_fits(text: str, zone: str) -> None:
    name = fits(text, zone)
    assume(name is not None)
    assert qname_to_text(name) == (normalize(text), dns.name.from_text(zone).to_text().lower())


@settings(max_examples=300, deadline=None)
@given(TEXTS, ZONES)
def test_names_are_ldh_and_within_limits(text: str, zone: str) -> None:
    name = fits(text, zone)
    assume(name is not None)
    parsed = dns.name.from_text(name)
    assert name == parsed.to_text().lower()  # the codec writes the name as dnspython would
    assert len(parsed.to_wire()) <= 255
    text_labels = parsed.labels[: len(parsed.labels) - len(dns.name.from_text(zone).labels) - 1]
    for label in text_labels:
        assert len(label) <= 63
        assert LDH.fullmatch(label.decode()), label
        assert label[2:4] != b"--"
        assert label not in (b"q", b"explain")


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.randoms(use_true_random=False))
def test_random_case_decodes_the_same(text: str, rnd: random.Random) -> None:
    name = fits(text, "semantic.root.")
    assume(name is not None)
    mixed = "".join(c.upper() if rnd.random() < 0.5 else c for c in name)
    assert qname_to_text(mixed) == qname_to_text(name)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab ", min_size=300, max_size=600))
def test_too_long_text_raises_text_too_long(text: str) -> None:
    assume(len(normalize(text)) > 260)
    with pytest.raises(TextTooLong, match="EDNS"):
        text_to_qname(text, "semantic.root.")


def test_examples_read_well() -> None:
    assert text_to_qname("Is a verbal agreement legally binding?", "semantic.root") == (
        "is-a-verbal-agreement-legally-bindingqm.q.semantic.root."
    )
    assert text_to_qname("What's   the TENANT's right", "legal.semantic.root.", "explain") == (
        "whatqas-the-tenantqas-right.explain.legal.semantic.root."
    )
    assert text_to_qname("explain", "semantic.root.") == "explqj.ain.q.semantic.root."


def test_long_word_is_joined_across_labels() -> None:
    name = text_to_qname("a" * 100 + " b", "semantic.root.")
    first, second = name.split(".")[:2]
    assert first.endswith("qj") and len(first) <= 63
    assert qname_to_text(name)[0] == "a" * 100 + " b"


def test_parse_reports_form_zone_and_labels() -> None:
    parsed = parse_semantic_name("What-IS-a-TORTqm.Explain.Legal.Semantic.Root.")
    assert (parsed.form, parsed.zone, parsed.text) == ("explain", "legal.semantic.root.", "what is a tort?")
    assert parsed.labels == ("what-is-a-tortqm",)
    assert parsed.rebase("contract.legal.semantic.root.", "q") == "what-is-a-tortqm.q.contract.legal.semantic.root."


def test_hashed_form_is_recognised_and_text_colliding_with_it_is_escaped() -> None:
    hashed = "h-" + "a" * 32 + ".q.semantic.root."
    parsed = parse_semantic_name(hashed)
    assert parsed.hashed and parsed.text is None and parsed.text_hash == "h-" + "a" * 32
    with pytest.raises(HashedName):
        qname_to_text(hashed)
    name = text_to_qname("h " + "a" * 32, "semantic.root.")
    assert name.startswith("q268-")
    assert qname_to_text(name)[0] == "h " + "a" * 32


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("q.semantic.root.", EmptyText),
        ("legal.semantic.root.", NotSemantic),
        ("abq.q.semantic.root.", BadEncoding),  # escape at the end of a word
        ("a--b.q.x.", BadEncoding),  # empty word
        ("-ab.q.x.", BadEncoding),
        ("aqj.q.x.", BadEncoding),  # join on the last text label
        ("aqjb.q.x.", BadEncoding),  # join inside a label
        ("q241.q.x.", BadEncoding),  # escaped capital: not normalised
        ("q261.q.x.", BadEncoding),  # hex for a literal letter: not canonical
        ("q2003f.q.x.", BadEncoding),  # leading zero hex: not canonical
        ("q7abcdefa.q.x.", BadEncoding),  # unknown escape length
        ("q6110000.q.x.", BadEncoding),  # beyond Unicode
        ("q4d800.q.x.", BadEncoding),  # surrogate
        ("a_b.q.x.", BadEncoding),
        ("qqu.q.x.", BadEncoding),  # 'qu' must be written literally
    ],
)
def test_bad_names_raise_clear_errors(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        qname_to_text(name)


def test_empty_and_whitespace_text_are_rejected() -> None:
    for text in ("", "   ", "\t\n\u3000"):
        with pytest.raises(EmptyText):
            text_to_qname(text, "semantic.root.")


LDH_WORD = st.text(alphabet="abcdefghijklmnoprstuvwxyz0123456789", min_size=1, max_size=70)


@given(st.lists(LDH_WORD, min_size=1, max_size=12))
def test_labels_without_escapes_decode_to_their_words(words: list[str]) -> None:
    # The decoder's shortcut for names without any `q` must agree with the encoder both ways.
    text = " ".join(words)
    try:
        name = text_to_qname(text, "semantic.root.")
    except TextTooLong:
        return
    parsed = parse_semantic_name(name)
    assert parsed.text == text
    assert text_to_qname(parsed.text, "semantic.root.") == name


def test_rebase_refuses_labels_the_codec_does_not_write() -> None:
    parsed = parse_semantic_name("what-is-this.q.semantic.root.")
    assert parsed.rebase("legal.semantic.root.") == "what-is-this.q.legal.semantic.root."
    odd = dataclasses.replace(parsed, labels=("what is",))
    with pytest.raises(BadEncoding, match="labels"):
        odd.rebase("legal.semantic.root.")
