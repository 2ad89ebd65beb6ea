"""EDNS form: text and embedding options round trip; each bad payload gets its error; the choice
between the QNAME and the EDNS form follows the longest name a question would be sent with."""
from __future__ import annotations

import dns.name
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.edns_text import (
    FLAG_ZSTD,
    MAX_TEXT_OCTETS,
    decode_embedding_option,
    decode_text_option,
    encode_embedding_option,
    encode_text_option,
    hashed_qname,
    is_hashed_label,
    model_tag,
    query_form,
    text_hash_label,
)
from codec.errors import BadEncoding, EmptyText, TextTooLong, Truncated, UnknownFlag
from codec.qname import parse_semantic_name, text_qnames, text_to_qname


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=3000).filter(lambda t: t.split()))
def test_text_option_round_trips_exactly(text: str) -> None:
    assert decode_text_option(encode_text_option(text)) == text


def test_long_repetitive_text_is_compressed_and_flagged() -> None:
    text = "the tenant shall pay the rent on the first day of the month. " * 50
    payload = encode_text_option(text)
    assert payload[0] == FLAG_ZSTD and len(payload) < len(text) // 5
    assert decode_text_option(payload) == text


def test_short_text_is_sent_plain() -> None:
    assert encode_text_option("hi") == b"\x00hi"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", Truncated),
        (b"\x02abc", UnknownFlag),
        (b"\x80abc", UnknownFlag),
        (b"\x00\xff\xfeabc", BadEncoding),
        (b"\x00   ", EmptyText),
        (b"\x01not a zstd frame", Truncated),
    ],
)
def test_bad_text_options_raise(payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_text_option(payload)


def test_truncated_zstd_body_is_rejected() -> None:
    payload = encode_text_option("abc " * 500)
    with pytest.raises(Truncated):
        decode_text_option(payload[:-5])


def test_zstd_frame_without_content_size_is_rejected() -> None:
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"hello " * 100)
    with pytest.raises(BadEncoding, match="content size"):
        decode_text_option(bytes([FLAG_ZSTD]) + frame)


def test_hashed_qname_keys_on_the_normalised_text() -> None:
    name = hashed_qname("What IS  a tort?", "legal.semantic.root")
    assert name == hashed_qname("what is a tort?", "legal.semantic.root.")
    assert name != hashed_qname("what is a tort", "legal.semantic.root.")
    label = name.split(".")[0]
    assert is_hashed_label(label) and is_hashed_label(label.upper().encode())
    assert not is_hashed_label("h-short")
    parsed = parse_semantic_name(name)
    assert parsed.hashed and parsed.zone == "legal.semantic.root."


@pytest.mark.parametrize("zone", ["semantic.root.", "Legal.Semantic.Root", "."])
def test_hashed_qname_is_written_as_dnspython_writes_it(zone: str) -> None:
    for form in ("q", "explain"):
        name = hashed_qname("what is a lien?", zone, form)
        assert name == dns.name.from_text(name).to_text().lower()
        zone_text = dns.name.from_text(zone).to_text().lower()
        assert name == f"{text_hash_label('what is a lien?')}.{form}." + (zone_text if zone_text != "." else "")


def test_a_zone_that_leaves_no_room_for_a_hashed_name_is_refused() -> None:
    deep = ".".join(["z" * 63] * 3) + ".abcdefghijklmnopqrst."  # 214 octets: room for 'q', not 'explain'
    assert hashed_qname("a question", deep, "q")
    with pytest.raises(BadEncoding, match="no room"):
        hashed_qname("a question", deep, "explain")


def test_embedding_option_round_trips_within_quantisation_error() -> None:
    vec = np.random.default_rng(7).normal(size=384).astype(np.float32)
    vec /= np.linalg.norm(vec)
    tag = model_tag("all-MiniLM-L6-v2")
    decoded = decode_embedding_option(encode_embedding_option(vec, tag))
    assert decoded.model == tag and decoded.vector.shape == (384,)
    assert float(np.dot(vec, decoded.vector) / np.linalg.norm(decoded.vector)) > 0.999
    assert np.max(np.abs(decoded.vector - vec)) <= np.max(np.abs(vec)) / 127 + 1e-6


def test_zero_embedding_round_trips() -> None:
    decoded = decode_embedding_option(encode_embedding_option(np.zeros(8), 1))
    assert not decoded.vector.any()


def test_bad_embedding_options_raise() -> None:
    good = encode_embedding_option(np.ones(4), 3)
    with pytest.raises(Truncated):
        decode_embedding_option(good[:5])
    with pytest.raises(Truncated):
        decode_embedding_option(good[:-1])
    with pytest.raises(BadEncoding):
        decode_embedding_option(good[:4] + b"\x7f\xc0\x00\x00" + good[8:])  # NaN scale
    with pytest.raises(BadEncoding):
        encode_embedding_option([float("inf")], 3)


# -- choosing the form ------------------------------------------------------------------------

def wire_octets(name: str) -> int:
    return len(dns.name.from_text(name).to_wire())


def text_with_q_name_of(octets: int) -> str:
    """A text of lowercase words whose `q` name under semantic.root. is `octets` long (a space
    costs what a `-` or a label break does: the name is the text plus 18 octets)."""
    text = ("lease " * 60)[: octets - 18]
    return text[:-1] + "s" if text.endswith(" ") else text


@pytest.mark.parametrize("q_octets", [250, 252, 255])
def test_text_whose_explain_name_is_too_long_takes_the_edns_form(q_octets: int) -> None:
    text = text_with_q_name_of(q_octets)
    assert wire_octets(text_to_qname(text, "semantic.root.")) == q_octets  # the q name alone fits
    with pytest.raises(TextTooLong):
        text_qnames(text, "semantic.root.")
    form = query_form(text, "semantic.root.")
    assert form.option is not None and decode_text_option(form.option) == text
    assert form.name("q") == hashed_qname(text, "semantic.root.")
    assert form.name("explain") == hashed_qname(text, "semantic.root.", "explain")


def test_text_whose_names_both_fit_takes_the_qname_form() -> None:
    text = text_with_q_name_of(249)
    form = query_form(text, "semantic.root")
    assert form.option is None
    assert form.names == text_qnames(text, "semantic.root.")
    assert wire_octets(form.name("explain")) == 255
    assert query_form(text, "legal.semantic.root.").option is not None  # a deeper zone leaves less room


@pytest.mark.parametrize(
    ("text", "error"),
    [("", EmptyText), (" \t\u3000", EmptyText), ("a\ud800b", BadEncoding), ("\ud800 " * 200, BadEncoding),
     ("ab " * 21667, BadEncoding)],  # 65,001 octets: more than the text option carries
)
def test_text_no_form_carries_raises(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        query_form(text, "semantic.root.")


def test_text_option_takes_up_to_65000_octets() -> None:
    text = "\U0001f600" * (MAX_TEXT_OCTETS // 4)
    assert decode_text_option(query_form(text, "semantic.root.").option or b"") == text
