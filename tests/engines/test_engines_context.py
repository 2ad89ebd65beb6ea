"""Compressed context: round trips with and without a pattern library, and each failure named."""
from __future__ import annotations

import base64
import random

import pytest
import zstandard

from codec.library import PatternLibrary
from engines.context import ContextDecoder, encode_context
from engines.errors import ContextError
from engines.schema import CompressedContext


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    rng = random.Random(3)
    words = "contract breach damages party clause notice termination liability court claim".split()
    samples = [" ".join(rng.choice(words) for _ in range(40)).encode() for _ in range(300)]
    return PatternLibrary.from_dictionary(zstandard.train_dictionary(4096, samples).as_bytes())


TEXT = "The party gave notice of termination; the clause limits liability for breach. Ünïcode ok."


def test_round_trip_without_library() -> None:
    assert ContextDecoder().decode(encode_context(TEXT)) == TEXT


def test_round_trip_with_library(library: PatternLibrary) -> None:
    context = encode_context(TEXT, library)
    assert context.dict_id == library.dict_id
    assert ContextDecoder({library.dict_id: library}).decode(context) == TEXT


def test_unknown_dictionary(library: PatternLibrary) -> None:
    with pytest.raises(ContextError) as info:
        ContextDecoder().decode(encode_context(TEXT, library))
    assert info.value.code == "unknown_dictionary" and str(library.dict_id) in info.value.message


def test_corrupt_body() -> None:
    good = base64.b64decode(encode_context(TEXT).data)
    damaged = good[:-6] + bytes(b ^ 0xFF for b in good[-6:])
    for data in (base64.b64encode(damaged).decode(), base64.b64encode(b"not zstd").decode()):
        with pytest.raises(ContextError) as info:
            ContextDecoder().decode(CompressedContext(dict_id=0, encoding="zstd+base64", data=data))
        assert info.value.status == 400 and info.value.code == "corrupt_context"


def test_bad_base64_and_encoding() -> None:
    with pytest.raises(ContextError, match="base64"):
        ContextDecoder().decode(CompressedContext(dict_id=0, encoding="zstd+base64", data="!!!"))
    with pytest.raises(ContextError, match="encoding"):
        ContextDecoder().decode(CompressedContext(dict_id=0, encoding="gzip", data=""))


def test_dict_id_must_match_frame(library: PatternLibrary) -> None:
    plain = encode_context(TEXT)
    with pytest.raises(ContextError, match="frame needs dictionary 0"):
        ContextDecoder({library.dict_id: library}).decode(
            CompressedContext(dict_id=library.dict_id, encoding=plain.encoding, data=plain.data))
