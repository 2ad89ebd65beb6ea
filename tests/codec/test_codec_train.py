"""Library training: cross-fitted entropy tables in front of the whole corpus's content, ids, budget."""
from __future__ import annotations

import random

import pytest
import zstandard

from codec.compress import compress, decompress
from codec.errors import TrainingError
from codec.library import TRIMMED
from codec.train import HEADER_RESERVE, _filled, train_library
from codec.zdict import finalize_dictionary, with_content

WORDS = ("invoice balance quarterly revenue audit ledger the of and to account payable "
         "statement dividend shares interest rate").split()
TEMPLATES = (b"Question: what is the net interest margin reported for the quarter? Answer: ",
             b"Context: the company filed its annual statement with the regulator. ")


def make_corpus(seed: int, count: int = 24, words: int = 200) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.choice(TEMPLATES) + " ".join(rnd.choice(WORDS) for _ in range(words)).encode()
            for _ in range(count)]


def test_with_content_keeps_id_and_content_and_takes_the_tables() -> None:
    docs = make_corpus(3)
    content_a = b"".join(docs[:8])[:6000]
    content_b = b"".join(docs[8:])[:5000]
    full = finalize_dictionary(content_a, docs, 16384, 19)
    tables = finalize_dictionary(content_b, docs[:4], 16384, 19)
    spliced = with_content(full, tables)
    assert spliced[:8] == full[:8]  # magic and dictionary id
    assert spliced.endswith(content_a)
    assert not spliced.endswith(content_b)
    assert len(spliced) - len(content_a) == len(tables) - len(content_b)  # the tables' header
    library = zstandard.ZstdCompressionDict(spliced, dict_type=zstandard.DICT_TYPE_FULLDICT)
    assert library.dict_id() == zstandard.ZstdCompressionDict(full).dict_id()


def test_with_content_rejects_raw_content() -> None:
    with pytest.raises(TrainingError):
        with_content(b"not a dictionary at all, just text" * 4, b"neither" * 20)


def test_trained_library_round_trips_and_beats_no_dictionary() -> None:
    docs = make_corpus(5)
    library = train_library(docs[:-4], size=16384)
    assert len(library.data) <= 16384
    by_id = {library.dict_id: library}
    for doc in docs[-4:]:  # held out from training
        payload = compress(doc, library)
        assert decompress(payload, by_id) == doc
        assert len(payload) < len(compress(doc, None))


def test_training_is_deterministic_and_depends_on_the_corpus() -> None:
    first = train_library(make_corpus(7), size=8192)
    assert train_library(make_corpus(7), size=8192) == first
    assert train_library(make_corpus(8), size=8192).sha256 != first.sha256


def test_library_respects_the_size_budget() -> None:
    docs = make_corpus(9, count=40, words=600)
    library = train_library(docs, size=8192)
    assert 8192 - HEADER_RESERVE - 256 <= len(library.data) <= 8192


def test_tiny_held_in_documents_fall_back_to_in_sample_tables() -> None:
    shared = make_corpus(11, count=2, words=400)
    docs = [shared[0], b"a", b"b", b"c", shared[1], b"d", b"e", b"f"]  # the held-in three share nothing
    library = train_library(docs, size=8192, words=False)  # encoded, the corpus would be too small
    assert decompress(compress(shared[0], library), {library.dict_id: library}) == shared[0]


def test_dictionary_ids_take_two_octets_and_follow_the_content() -> None:
    libraries = [
        train_library(make_corpus(seed), size=8192, words=words) for seed in (12, 13) for words in (False, True)
    ]
    assert all(32768 <= library.dict_id < 65536 for library in libraries)
    assert len({library.dict_id for library in libraries}) == len(libraries)
    frame = compress(make_corpus(14, count=1)[0], libraries[0])
    assert zstandard.get_frame_parameters(frame).dict_id == libraries[0].dict_id
    assert frame[4] & 0x03 == 2  # Frame_Header_Descriptor: Dictionary_ID_Flag 2 = a 2-octet id


def test_word_table_and_dictionary_share_the_size_budget() -> None:
    docs = make_corpus(15, count=40, words=600)
    library = train_library(docs, size=8192)
    assert library.version == TRIMMED and 0 < library.table_octets and len(library.data) <= 8192
    assert len(library.dictionary) + library.table_octets == len(library.data)


OTHER_WORDS = ("patient dose clinic symptom therapy blood pressure chronic acute renal cardiac screening diagnosis "
               "treatment history follow review with for in was").split()


def other_domain(seed: int, count: int = 30) -> list[bytes]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(OTHER_WORDS) for _ in range(300)).encode() for _ in range(count)]


def test_fill_takes_only_the_room_the_domain_leaves_and_sits_farthest() -> None:
    docs, fill = make_corpus(11, count=10, words=100), other_domain(12)
    alone = train_library(docs, size=65536)
    filled = train_library(docs, size=65536, fill=fill)
    assert len(alone.data) + 4096 < len(filled.data) <= 65536  # the domain left room, the fill took some
    assert alone.word_table is not None and filled.word_table is not None
    own = alone.word_table.words  # the domain's words keep their codes, the fill's take the codes left
    assert filled.word_table.words[: len(own)] == own and b" patient" in filled.word_table.words[len(own) :]
    content = alone.dictionary[-1000:]  # the domain's most valuable content (at least 1024 octets) stays last
    assert filled.dictionary.endswith(content)
    held_out = other_domain(13, count=5)
    assert sum(len(compress(doc, filled)) for doc in held_out) < sum(len(compress(doc, alone)) for doc in held_out)
    for doc in held_out:
        assert decompress(compress(doc, filled), {filled.dict_id: filled}) == doc
    assert _filled(b"own content", fill, 5) == b"own content"  # no room left: nothing of the fill
    assert _filled(b"own content", [], 4096) == b"own content"
    assert _filled(b"own content", fill, 4096).endswith(b"own content")
