"""Pattern libraries: zone fragment round trip through dnspython, each corruption, compression.

Most tests use a `semcodec1` library (dictionary alone); `semcodec2` (word table + dictionary)
has its own tests in test_codec_wordtable.py.
"""
from __future__ import annotations

import random

import dns.zone
import pytest

from codec.compress import compress, decompress, payload_dict_id
from codec.errors import (
    BadHeader,
    ChecksumMismatch,
    ChunkOrder,
    CorruptPayload,
    MissingChunk,
    TrainingError,
    UnknownDictionary,
    UnknownVersion,
)
from codec.library import PatternLibrary, from_txt_records, library_owner_chain, parse_header
from codec.train import select_content, train_library

WORDS = ("tenant landlord lease notice court breach damages party agreement the of and to "
         "payment deposit repair eviction statute claim").split()


def make_corpus(seed: int, count: int = 40, words: int = 300) -> list[bytes]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(words)).encode() for _ in range(count)]


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return train_library(make_corpus(1), size=20000, words=False)


def zone_records(library: PatternLibrary) -> tuple[list[bytes], list[list[bytes]]]:
    text = ("$ORIGIN legal.semantic.root.\n$TTL 300\n@ SOA ns1 host 2026112301 3600 900 1209600 300\n"
            "@ NS ns1\nns1 A 127.0.0.2\n" + library.to_zone_fragment("legal.semantic.root.", ["test"]))
    zone = dns.zone.from_text(text, "legal.semantic.root.")
    header = list(zone.find_rdataset("_codec", "TXT")[0].strings)
    chunks = [list(zone.find_rdataset(f"{i}._codec", "TXT")[0].strings) for i in range(library.header.chunks)]
    return header, chunks


def test_fragment_round_trips_through_a_zone(library: PatternLibrary) -> None:
    header, chunks = zone_records(library)
    assert len(chunks) == 3  # 20000 octets in 8 KiB chunks
    assert all(len(s) <= 255 for record in chunks for s in record)
    assert from_txt_records(header, chunks) == library
    assert parse_header(header).sha256 == library.sha256
    assert library.name.endswith(library.sha256)


def test_training_is_deterministic(library: PatternLibrary) -> None:
    assert train_library(make_corpus(1), size=20000, words=False).sha256 == library.sha256


def test_missing_chunk(library: PatternLibrary) -> None:
    header, chunks = zone_records(library)
    with pytest.raises(MissingChunk, match=r"\[1\]"):
        from_txt_records(header, [chunks[0], chunks[2]])


def test_chunks_out_of_order(library: PatternLibrary) -> None:
    header, chunks = zone_records(library)
    with pytest.raises(ChunkOrder):
        from_txt_records(header, [chunks[1], chunks[0], chunks[2]])
    with pytest.raises(ChunkOrder):
        from_txt_records(header, [chunks[0], chunks[1], chunks[2], chunks[2]])


def test_sha256_mismatch(library: PatternLibrary) -> None:
    header, chunks = zone_records(library)
    body = bytearray(chunks[1][1])
    body[10:14] = b"AAAA" if body[10:14] != b"AAAA" else b"BBBB"
    with pytest.raises(ChecksumMismatch, match="sha256"):
        from_txt_records(header, [chunks[0], [chunks[1][0], bytes(body), *chunks[1][2:]], chunks[2]])
    with pytest.raises(ChecksumMismatch):
        from_txt_records(header, [chunks[0], chunks[1][:-1], chunks[2]])


def test_unknown_version_and_bad_header(library: PatternLibrary) -> None:
    header, chunks = zone_records(library)
    assert library.version == 1 and header[0] == b"v=semcodec1"
    with pytest.raises(UnknownVersion, match="semcodec9"):
        from_txt_records([b"v=semcodec9", *header[1:]], chunks)
    with pytest.raises(BadHeader, match="semcodec2.*table"):
        from_txt_records([b"v=semcodec2", *header[1:]], chunks)
    with pytest.raises(BadHeader, match="chunks"):
        from_txt_records(header[:-1], chunks)
    with pytest.raises(BadHeader):
        from_txt_records([*header[:-1], b"chunks=many"], chunks)


def test_owner_chain_falls_back_to_parents() -> None:
    assert library_owner_chain("contract.legal.semantic.root", apex="semantic.root.") == [
        "_codec.contract.legal.semantic.root.",
        "_codec.legal.semantic.root.",
        "_codec.semantic.root.",
    ]
    assert library_owner_chain("legal.semantic.root.")[-1] == "_codec.root."


def test_compress_round_trips_byte_exact(library: PatternLibrary) -> None:
    by_id = {library.dict_id: library}
    for doc in make_corpus(99, count=5, words=200) + [b"", "unicode \u00e9\u4e2d".encode() * 50]:
        with_dict = compress(doc, library)
        assert payload_dict_id(with_dict) == library.dict_id
        assert decompress(with_dict, by_id) == doc
        assert decompress(compress(doc, None), {}) == doc


def test_dictionary_helps_on_unseen_documents(library: PatternLibrary) -> None:
    docs = make_corpus(5, count=10, words=300)
    plain = sum(len(compress(d, None)) for d in docs)
    with_dict = sum(len(compress(d, library)) for d in docs)
    assert with_dict < plain * 0.9


def test_unknown_dictionary_and_corrupt_payloads(library: PatternLibrary) -> None:
    payload = compress(make_corpus(3, count=1)[0], library)
    with pytest.raises(UnknownDictionary) as info:
        decompress(payload, {})
    assert info.value.dict_id == library.dict_id
    by_id = {library.dict_id: library}
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0x40
    for bad in (b"", b"garbage, not zstd", payload[:-3], payload + b"\x00", bytes(flipped)):
        with pytest.raises(CorruptPayload):
            decompress(bad, by_id)


def test_training_needs_a_corpus() -> None:
    with pytest.raises(TrainingError):
        train_library([b"one", b"two"])


def test_content_prefers_what_many_documents_share() -> None:
    shared = b"the security deposit must be returned within thirty days"
    local = b"XQZ-ONLY-IN-ONE-DOCUMENT-REPEATED "
    rnd = random.Random(8)
    docs = [" ".join(rnd.choice(WORDS) for _ in range(60)).encode() + b" " + shared for _ in range(20)]
    docs[0] += local * 40
    content = select_content(docs, 200)
    assert shared in content
    assert local not in content
