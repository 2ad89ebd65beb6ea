"""Header bounds of pattern libraries (issue 12): refused in `parse_header`, before any chunk."""
from __future__ import annotations

import pytest

from codec.errors import BadHeader, HeaderOutOfBounds
from codec.library import (
    CHUNK_OCTETS,
    DEFAULT_LIMITS,
    HARD_LIMITS,
    LibraryLimits,
    check_header,
    chunks_for,
    parse_header,
)

SHA = "ab" * 32


def header(size: int, chunks: int) -> list[str]:
    return ["v=semcodec1", "id=40000", f"size={size}", f"sha256={SHA}", f"chunks={chunks}"]


def test_defaults_are_16_chunks_and_128_kib() -> None:
    assert DEFAULT_LIMITS == LibraryLimits(16, 128 * 1024)
    assert parse_header(header(128 * 1024, 16)).chunks == 16


@pytest.mark.parametrize(("size", "chunks", "word"), [
    (10**9, 10**8, "size=1000000000"),
    (128 * 1024 + 1, 17, "size="),
    (8192, 10**8, "chunks=100000000"),
    (8192, 2, "does not match"),
    (3 * CHUNK_OCTETS, 2, "does not match"),
])
def test_out_of_bounds_headers_are_refused(size: int, chunks: int, word: str) -> None:
    with pytest.raises(HeaderOutOfBounds, match=word) as caught:
        parse_header(header(size, chunks))
    assert isinstance(caught.value, BadHeader)  # older callers catching BadHeader still do


def test_a_reader_may_raise_its_limits_up_to_the_hard_caps() -> None:
    big = LibraryLimits(chunks=40, size=320 * 1024)
    assert parse_header(header(320 * 1024, 40), big).size == 320 * 1024
    huge = LibraryLimits(chunks=10**9, size=10**12)
    assert huge.capped() == HARD_LIMITS
    with pytest.raises(HeaderOutOfBounds):
        parse_header(header(HARD_LIMITS.size + CHUNK_OCTETS, chunks_for(HARD_LIMITS.size + CHUNK_OCTETS)), huge)


def test_check_header_lists_problems_for_zone_checks() -> None:
    assert check_header(header(64 * 1024, 8)) == []
    [problem] = check_header(header(10**9, 10**8))
    assert "size=1000000000" in problem
    assert check_header(["v=semcodec9"]) != []


def test_a_number_too_long_to_parse_is_a_bad_header() -> None:
    with pytest.raises(BadHeader):
        parse_header(["v=semcodec1", "id=40000", "size=" + "9" * 5000, f"sha256={SHA}", "chunks=1"])
