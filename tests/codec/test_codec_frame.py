"""The trimmed zstd frame of `semcodec3` payloads (`codec.frame`), and `semcodec2` payloads beside it."""
from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import frame
from codec.compress import FIRST_OUTPUT, compress, decompress, payload_dict_id
from codec.errors import CorruptPayload, UnknownDictionary
from codec.library import TRIMMED, WORDS, PatternLibrary
from codec.train import train_library

WORDS_OF_TEXT = ("tenant landlord lease notice court breach damages party agreement the of and to in a is "
                 "shall may deposit rent premises repair term clause written").split()


def make_corpus(seed: int, count: int) -> list[bytes]:
    rnd = random.Random(seed)
    return [(" ".join(rnd.choice(WORDS_OF_TEXT) for _ in range(rnd.randint(200, 600))) + ".").encode()
            for _ in range(count)]


@pytest.fixture(scope="module")
def pair() -> tuple[PatternLibrary, PatternLibrary]:
    """(semcodec3, semcodec2) libraries of the same data: the same table and dictionary, two frame forms."""
    trimmed = train_library(make_corpus(3, 40), size=16384)
    return trimmed, PatternLibrary.from_data(trimmed.data, WORDS, trimmed.table_octets)


def test_trimmed_frame_is_the_standard_frame_less_eight_or_nine_octets(
    pair: tuple[PatternLibrary, PatternLibrary],
) -> None:
    trimmed, standard = pair
    assert trimmed.version == TRIMMED and 32768 <= trimmed.dict_id < 65536
    for doc in make_corpus(4, 10):
        assert 1024 <= len(doc) < 65536
        short, full = compress(doc, trimmed), compress(doc, standard)
        # magic (4), checksum (4) and the content size of the encoded text (1 or 2 octets) go; a window
        # descriptor (1) comes
        assert len(full) - len(short) == 8 + (len(trimmed.word_table.encode(doc)) >= 256)
        assert short[0] == 0x02 and full.startswith(frame.MAGIC) and frame.is_trimmed(short)
        assert payload_dict_id(short) == payload_dict_id(full) == trimmed.dict_id
        assert decompress(short, {trimmed.dict_id: trimmed}) == doc == decompress(full, {standard.dict_id: standard})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000) | st.text(max_size=1500).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_round_trip_byte_exactly(pair: tuple[PatternLibrary, PatternLibrary], data: bytes) -> None:
    trimmed, _ = pair
    payload = compress(data, trimmed)
    assert frame.is_trimmed(payload)
    assert decompress(payload, {trimmed.dict_id: trimmed}) == data


def test_cut_or_extended_frames_are_refused(pair: tuple[PatternLibrary, PatternLibrary]) -> None:
    trimmed, _ = pair
    by_id = {trimmed.dict_id: trimmed}
    payload = compress(make_corpus(5, 1)[0], trimmed)
    for end in range(len(payload)):
        with pytest.raises(CorruptPayload):
            decompress(payload[:end], by_id)
    for tail in (b"\x00", b"\x02", payload):
        with pytest.raises(CorruptPayload, match="after the zstd frame"):
            decompress(payload + tail, by_id)


def test_a_form_other_than_the_librarys_is_refused(pair: tuple[PatternLibrary, PatternLibrary]) -> None:
    trimmed, standard = pair
    doc = make_corpus(6, 1)[0]
    with pytest.raises(CorruptPayload, match="trimmed zstd frame"):
        decompress(compress(doc, trimmed), {standard.dict_id: standard})
    with pytest.raises(CorruptPayload, match="standard zstd frame"):
        decompress(compress(doc, standard), {trimmed.dict_id: trimmed})
    with pytest.raises(UnknownDictionary):
        decompress(compress(doc, trimmed), {})


def test_the_output_is_bounded_while_decoding(pair: tuple[PatternLibrary, PatternLibrary]) -> None:
    trimmed, _ = pair
    by_id = {trimmed.dict_id: trimmed}
    for size in (FIRST_OUTPUT // 2, FIRST_OUTPUT + 1, 1_100_000):  # in the first room, then in a second one
        zeros = bytes(size)  # no word in it: the bound is zstd's
        payload = compress(zeros, trimmed)
        assert len(payload) < 200 and decompress(payload, by_id, max_output=size) == zeros
        assert decompress(payload, by_id) == zeros
        with pytest.raises(CorruptPayload):
            decompress(payload, by_id, max_output=size - 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_damaged_or_arbitrary_payloads_fail_cleanly(
    pair: tuple[PatternLibrary, PatternLibrary], noise: bytes, where: int, flip: int
) -> None:
    trimmed, _ = pair
    by_id = {trimmed.dict_id: trimmed}
    payload = bytearray(compress(make_corpus(7, 1)[0], trimmed))
    payload[where % len(payload)] ^= flip
    for candidate in (bytes(payload), noise, bytes([0x02]) + trimmed.dict_id.to_bytes(2, "little") + noise):
        try:
            decompress(candidate, by_id, max_output=1 << 16)
        except (CorruptPayload, UnknownDictionary):
            pass  # without a checksum a damaged body may also decode: only a clean error or bytes may come out


def test_only_a_standard_frame_with_a_dictionary_and_nothing_else_is_trimmed() -> None:
    for options in ({"write_checksum": True}, {"write_content_size": True}, {}):
        plain = zstandard.ZstdCompressor(**options).compress(b"no dictionary here")
        with pytest.raises(ValueError):
            frame.trim(plain)


def _checked(check: Callable[[bytes], int], payload: bytes) -> int | str:
    try:
        return check(payload)
    except CorruptPayload as exc:
        return str(exc)


BLOCK_HEADERS = st.integers(0, (1 << 24) - 1).map(lambda value: value.to_bytes(3, "little"))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"", b"\x01", b"\x02", b"\x03", b"\x04", b"\x28"]), st.integers(0, 255),
       st.lists(BLOCK_HEADERS | st.binary(max_size=6), max_size=6))
def test_the_c_check_of_a_frame_matches_the_python_reference(start: bytes, window: int, pieces: list[bytes]) -> None:
    """On headers of every kind, windows and block headers that may be last, RLE, reserved, cut or long."""
    payload = start + bytes([window]) + b"".join(pieces) if start else b"".join(pieces)
    assert _checked(frame.check, payload) == _checked(frame.check_python, payload)


def test_the_check_reads_the_dictionary_id_and_refuses_a_window_libzstd_refuses(
    pair: tuple[PatternLibrary, PatternLibrary],
) -> None:
    trimmed, _ = pair
    payload = compress(make_corpus(8, 1)[0], trimmed)
    assert frame.check(payload) == frame.check_python(payload) == trimmed.dict_id
    for exponent in (21, 22):
        wide = payload[:1] + bytes([exponent << 3]) + payload[2:]
        try:
            zstandard.get_frame_parameters(wide, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            libzstd = True
        except zstandard.ZstdError:
            libzstd = False
        for check in (frame.check, frame.check_python):
            assert (_checked(check, wide) == trimmed.dict_id) is libzstd is (exponent == 21)
