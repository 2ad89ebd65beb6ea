"""The word table's C loops (`codec/_wordtable.c`) against its Python reference, octet for octet."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import wordtable
from codec.errors import CorruptPayload
from codec.wordtable import ESCAPE, LEADS, RESERVED, SINGLES, WordTable


def test_the_c_module_is_built_and_used() -> None:
    """`pip install -e .` (scripts/setup.sh) builds codec._wordtable; without it the library stage
    falls back to the Python loops, 5-10x slower: that must not pass unnoticed."""
    assert wordtable._native is not None

WORDS = (b" the", b"the", b" of", b"and", b" Court", *(f" w{chr(97 + i // 26)}{chr(97 + i % 26)}".encode()
                                                     for i in range(400)))
NATIVE = WordTable(WORDS)
PYTHON = WordTable(WORDS, native=False)
SMALL = WordTable((b" the", b"of"))  # most codes unassigned
SMALL_PYTHON = WordTable((b" the", b"of"), native=False)
ODD = bytes(sorted(RESERVED)) + b" \t\n\r\x00\x1b"  # every code, lead, escape and continuation octet
PIECES = st.sampled_from([*WORDS[:12], b"the", b" thee", b" ", b"x", "Thé".encode(), "’".encode(), "😀".encode()])


def _same_decoding(native: WordTable, python: WordTable, data: bytes, limit: int | None = None) -> None:
    try:
        expected: bytes | str = python.decode(data, limit)
    except CorruptPayload as exc:
        expected = str(exc)
    try:
        got: bytes | str = native.decode(data, limit)
    except CorruptPayload as exc:
        got = str(exc)
    assert got == expected


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_encode_matches_the_reference_on_any_bytes(data: bytes) -> None:
    encoded = NATIVE.encode(data)
    assert encoded == PYTHON.encode(data)
    assert NATIVE.decode(encoded) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES | st.binary(max_size=3) | st.sampled_from([bytes([o]) for o in ODD]), max_size=80))
def test_encode_matches_the_reference_on_words_among_code_octets(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert NATIVE.encode(data) == PYTHON.encode(data)
    assert NATIVE.decode(NATIVE.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_utf8_text_matches_the_reference(text: str) -> None:
    data = text.encode()
    assert NATIVE.encode(data) == PYTHON.encode(data)
    assert NATIVE.decode(NATIVE.encode(data)) == data


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([bytes([o]) for o in ODD]) | st.binary(max_size=2), max_size=40))
def test_decode_of_adversarial_octets_matches_the_reference(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    _same_decoding(NATIVE, PYTHON, data)
    _same_decoding(SMALL, SMALL_PYTHON, data)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_any_bytes_matches_the_reference(data: bytes) -> None:
    _same_decoding(NATIVE, PYTHON, data)
    _same_decoding(SMALL, SMALL_PYTHON, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES | st.sampled_from([bytes([o]) for o in ODD]), max_size=40), st.integers(0, 400))
def test_decode_limit_matches_the_reference(pieces: list[bytes], limit: int) -> None:
    """The limit counts the octets still to read as they stand (a word's code then trailing text:
    the C loops once let trailing text past the limit)."""
    encoded = NATIVE.encode(b"".join(pieces))
    for data in (encoded, b"".join(pieces)):
        _same_decoding(NATIVE, PYTHON, data, limit)


def test_decode_limit_and_cut_codes() -> None:
    payload = SINGLES[:1] * 100  # " the" a hundred times
    assert NATIVE.decode(payload, 400) == b" the" * 100
    with pytest.raises(CorruptPayload, match="beyond 399 octets"):
        NATIVE.decode(payload, 399)
    with pytest.raises(CorruptPayload, match="beyond 9 octets"):  # the word fits, the text after it does not
        NATIVE.decode(SINGLES[:1] + b"abcdef", 9)
    for cut in (bytes([LEADS[0]]), bytes([ESCAPE]), b"\xe2\x80", b"\xc3", bytes([ESCAPE]) + b"a"):
        with pytest.raises(CorruptPayload):
            NATIVE.decode(b"ok" + cut)
        _same_decoding(SMALL, SMALL_PYTHON, b"ok" + cut)


def test_large_inputs_grow_the_output() -> None:
    data = (b" the of and Court \xff\x80 caf\xc3\xa9 " * 5000)
    assert NATIVE.encode(data) == PYTHON.encode(data)
    assert NATIVE.decode(NATIVE.encode(data)) == data


def test_the_c_module_refuses_words_it_cannot_pack_and_tables_it_did_not_pack() -> None:
    native = wordtable._native
    assert native is not None
    for words in ((b" the", 3), (b" the", b""), (b"x" * 65,)):
        with pytest.raises(TypeError, match="1 to 64 octets"):
            native.pack(words)
    for call in (lambda: native.decode(SINGLES[:1], b"\0" * 40000, -1), lambda: native.encode(b" the", (b" the",))):
        with pytest.raises(TypeError, match="not the output of pack"):
            call()
    table = native.pack((b" the", b"of"))
    assert native.decode(native.encode(b"all of the x", table), table, -1) == b"all of the x"
