"""The first stage of `semcodec2` and `semcodec3`: word table transform, its library format and its compression."""
from __future__ import annotations

import random

import dns.zone
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.compress import compress, decompress, payload_dict_id
from codec.errors import BadHeader, BadTable, CorruptPayload
from codec.library import TRIMMED, WORDS, PatternLibrary, from_txt_records, parse_header
from codec.train import train_library
from codec.wordtable import CAPACITY, CONTINUATIONS, CONTROLS, ESCAPE, LEADS, RESERVED, SINGLES, WordTable, learn_table

STEMS = ("patient", "dose", "clinic", "symptom", "therapy", "blood", "pressure", "chronic", "acute",
         "renal", "cardiac", "screening", "diagnosis", "treatment", "history", "follow", "review")
GLUE = ("the", "of", "and", "with", "for", "in", "a", "was", "is", "to", "The", "after", "before")


def make_document(rnd: random.Random, words: int = 300) -> bytes:
    """Generated clinical-sounding prose: frequent short words, punctuation, numbers, capitals."""
    out = []
    for index in range(words):
        word = rnd.choice(GLUE) if rnd.random() < 0.45 else rnd.choice(STEMS) + rnd.choice(("", "s", "ed", "ing"))
        if index % 13 == 0:
            word = word.capitalize()
        out.append(word + rnd.choice(("", "", "", "", ",", ".", f" {rnd.randint(1, 500)} mg")))
    return " ".join(out).encode()


def make_corpus(seed: int, count: int) -> list[bytes]:
    rnd = random.Random(seed)
    return [make_document(rnd, rnd.randint(150, 600)) for _ in range(count)]


@pytest.fixture(scope="module")
def table() -> WordTable:
    return learn_table(make_corpus(1, 30))


def letters(number: int) -> str:
    """A distinct run of letters per number (a, b, ..., ba, bb, ...)."""
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out = chr(97 + digit) + out
        if not number:
            return out


BIG_WORDS = (b" the", b"the", b" of", *(f" w{letters(i)}".encode() for i in range(400)))


@pytest.fixture(scope="module")
def big() -> WordTable:
    """A table of 403 words: its one-octet codes (controls, continuation octets) and two-octet codes are all in use."""
    return WordTable(BIG_WORDS)


TRICKY = (b"\xc3", b"\xc3\xa9", b"\xe2\x80", b"\xe2\x80\x99", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\x80",
          b"\xbf", b"\xa9", b"\xc0", b"\xc1", b"\xf5", b"\xf4", b"\xff", b"\x01", b"\x1b", b"\xed\xa0\x80", b"\xe0\x80")


@pytest.fixture(scope="module")
def libraries() -> tuple[PatternLibrary, PatternLibrary]:
    """(semcodec1, semcodec3) libraries trained on the same documents."""
    docs = make_corpus(2, 60)
    return train_library(docs, size=16384, words=False), train_library(docs, size=16384)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_round_trip(table: WordTable, data: bytes) -> None:
    assert table.decode(table.encode(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"the", b" the", b"The", b" patient", b"x", b" ", b"\xff", b"\x01", b"\xc0",
                                 b"\xf5", b"\x1b", b"\n", b"\xe2\x80\x99", b"dose", b"doses"]), max_size=80))
def test_word_soup_with_reserved_octets_round_trips(table: WordTable, pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert table.decode(table.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(BIG_WORDS[:40]) | st.sampled_from(TRICKY) | st.binary(max_size=3), max_size=60))
def test_big_table_round_trips_words_next_to_broken_utf8(big: WordTable, pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert big.decode(big.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_big_table_round_trips_any_bytes(big: WordTable, data: bytes) -> None:
    assert big.decode(big.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=6) | st.sampled_from(["the", " the", " ww", " wcb", "é", "’", "😀"]), max_size=60))
def test_any_unicode_text_round_trips_without_escapes(big: WordTable, pieces: list[str]) -> None:
    data = "".join(pieces).encode("utf-8", "surrogatepass")
    encoded = big.encode(data)
    assert big.decode(encoded) == data
    if not set(data) & set(CONTROLS):
        assert bytes([ESCAPE]) not in encoded  # UTF-8 keeps its sequences: nothing to escape


def test_continuation_codes_and_their_neighbours() -> None:
    table = WordTable(BIG_WORDS)
    the, far = table.encode(b" the"), table.encode(b" w" + letters(300).encode())
    assert the == CONTROLS[:1] and table.encode(b" ww") == CONTINUATIONS[:1] and len(far) == 2
    cases = {
        "é the".encode(): "é".encode() + the,  # a code right after a whole sequence
        b"\xc3 the": b"\xff\xc3" + the,  # a lead without its continuation is escaped: the code is not its continuation
        b"\xc3 ww": b"\xff\xc3" + CONTINUATIONS[:1],
        b"\xe2\x80 ww": b"\xff\xe2\xff\x80" + CONTINUATIONS[:1],
        b"\x80\xbf": b"\xff\x80\xff\xbf",  # continuation octets outside a sequence are escaped
        b" ww\xe2\x80\x99 ww": CONTINUATIONS[:1] + "’".encode() + CONTINUATIONS[:1],
        b"\xc3\xc3\xa9": b"\xff\xc3\xc3\xa9",
        b"the\xf0\x9f\x98": CONTROLS[1:2] + b"\xff\xf0\xff\x9f\xff\x98",  # a sequence cut at the end
        b"\xed\xa0\x80\xe0\x80\x80": b"\xed\xa0\x80\xe0\x80\x80",  # surrogates, overlongs: sequences too
        b"\xff\xc0\xf5\x1b\x01": b"\xff\xff\xff\xc0\xff\xf5\x1b\xff\x01",
    }
    for original, encoded in cases.items():
        assert table.encode(original) == encoded, original
        assert table.decode(encoded) == original, original
    assert table.decode(b"\xc3" + CONTINUATIONS[:1]) == b"\xc3\x80"  # a sequence, not a lead then a code
    for stray in (b"\xc3", b"\xc3a", b"\xe2\x80", b"\xf4", b"\xff", b"\xffa"):
        with pytest.raises(CorruptPayload, match="reserved"):
            table.decode(b"ok" + stray)
        with pytest.raises(CorruptPayload, match="reserved"):
            table.decode(b"ok" + stray, limit=10)


def test_utf8_text_needs_no_escape_and_typical_text_shrinks(table: WordTable) -> None:
    text = "Café – the patient’s dose was reviewed; the therapy continues. ".encode() * 20
    encoded = table.encode(text)
    assert bytes([ESCAPE]) not in encoded
    held_out = make_corpus(3, 5)
    assert sum(map(len, (table.encode(d) for d in held_out))) < 0.6 * sum(map(len, held_out))


def test_codes_are_reserved_octets_and_words_are_whole_tokens() -> None:
    assert not RESERVED & set(range(0x20, 0x7F)) and not RESERVED & {0x00, 0x09, 0x0A, 0x0D, 0x1B}
    assert SINGLES == CONTROLS + CONTINUATIONS and CONTINUATIONS == bytes(range(0x80, 0xC0))
    assert RESERVED == set(CONTROLS) | set(range(0x80, 0x100))  # every octet UTF-8 uses outside ASCII
    assert len(SINGLES) + 256 * len(LEADS) == CAPACITY == 3161 and not set(LEADS) & set(range(0xC2, 0xF5))
    words = [b" the", b"the", *(f" w{letters(i)}".encode() for i in range(100))]
    table = WordTable(tuple(words))
    assert table.encode(b"a the b") == b"a" + SINGLES[:1] + b" b"
    assert table.encode(b"the(the)") == SINGLES[1:2] + b"(" + SINGLES[1:2] + b")"
    assert table.encode(b"bathe theme") == b"bathe theme"  # "the" only as a whole word
    assert table.encode(b"1 wbm") == b"1" + bytes([0x80 + 40 - len(CONTROLS)])  # entry 40: a continuation octet
    assert table.encode(b"1 wdl") == b"1" + bytes([LEADS[0], 91 - len(SINGLES)])  # entry 91: two octets


def test_learning_wants_words_in_several_documents() -> None:
    docs = make_corpus(4, 10)
    docs[0] += b" zygomorphic" * 50
    learnt = learn_table(docs)
    assert b" zygomorphic" not in learnt.words
    assert b" patient" in learnt.words and b" of" in learnt.words
    assert b" a" not in learnt.words  # too short to pay for a code
    assert learn_table(docs) == learnt  # deterministic


def test_table_serialises_and_rejects_bad_tables(table: WordTable) -> None:
    assert WordTable.from_bytes(table.to_bytes()) == table
    with pytest.raises(BadTable):
        WordTable.from_bytes(b"not zstd")
    with pytest.raises(BadTable, match="twice"):
        WordTable((b"the", b"the"))
    with pytest.raises(BadTable, match="not a word"):
        WordTable((b"two words",))
    with pytest.raises(BadTable, match="hold 3161"):
        WordTable(tuple(b"w" + str(i).translate(str.maketrans("0123456789", "abcdefghij")).encode()
                        for i in range(CAPACITY + 1)))


def test_decode_rejects_unassigned_and_cut_codes() -> None:
    small = WordTable((b" alpha", b" beta"))
    assert small.decode(SINGLES[:2]) == b" alpha beta"
    for bad in (SINGLES[2:3], bytes([LEADS[0], 7]), bytes([LEADS[0]]), bytes([ESCAPE]), bytes([ESCAPE]) + b"a"):
        with pytest.raises(CorruptPayload):
            small.decode(b"ok " + bad)
    with pytest.raises(CorruptPayload, match="beyond 100"):
        small.decode(SINGLES[:1] * 30, limit=100)
    assert small.decode(SINGLES[:1] * 10, limit=60) == b" alpha" * 10


@pytest.mark.parametrize("version", [WORDS, TRIMMED])
def test_library_with_a_table_travels_in_a_zone(libraries: tuple[PatternLibrary, PatternLibrary], version: int) -> None:
    trained = libraries[1]
    assert trained.version == TRIMMED and trained.word_table is not None and len(trained.data) <= 16384
    library = PatternLibrary.from_data(trained.data, version, trained.table_octets)
    tag = f"semcodec{version}".encode()
    text = ("$ORIGIN medical.semantic.root.\n$TTL 300\n@ SOA ns1 host 1 3600 900 1209600 300\n@ NS ns1\n"
            "ns1 A 127.0.0.2\n" + library.to_zone_fragment("medical.semantic.root."))
    zone = dns.zone.from_text(text, "medical.semantic.root.")
    header = list(zone.find_rdataset("_codec", "TXT")[0].strings)
    chunks = [list(zone.find_rdataset(f"{i}._codec", "TXT")[0].strings) for i in range(library.header.chunks)]
    assert header[0] == b"v=" + tag and header[-1] == f"table={library.table_octets}".encode()
    assert parse_header(header).table == library.table_octets
    restored = from_txt_records(header, chunks)
    assert restored == library and restored.word_table == library.word_table
    assert restored.name.startswith(tag.decode() + "-sha256-")
    with pytest.raises(BadHeader, match="table"):
        from_txt_records([*header[:-1], f"table={library.header.size}".encode()], chunks)
    with pytest.raises(BadHeader, match="semcodec1"):  # semcodec2/3 data read as semcodec1
        from_txt_records([b"v=semcodec1", *header[1:-1]], chunks)


def test_table_library_round_trips_and_beats_the_dictionary_alone(
    libraries: tuple[PatternLibrary, PatternLibrary],
) -> None:
    plain, library = libraries
    by_id = {plain.dict_id: plain, library.dict_id: library}
    assert plain.dict_id != library.dict_id and 32768 <= library.dict_id < 65536
    held_out = make_corpus(5, 12)
    for doc in held_out + [b"", bytes(range(256)) * 4, "naïve \u4e2d the \xff".encode()]:
        payload = compress(doc, library)
        assert payload_dict_id(payload) == library.dict_id
        assert decompress(payload, by_id) == doc
    with_words = sum(len(compress(doc, library)) for doc in held_out)
    alone = sum(len(compress(doc, plain)) for doc in held_out)
    assert with_words < alone


def test_table_library_payload_limit_counts_the_decoded_text(libraries: tuple[PatternLibrary, PatternLibrary]) -> None:
    _, library = libraries
    doc = b" the patient" * 400
    payload = compress(doc, library)
    assert decompress(payload, {library.dict_id: library}, max_output=len(doc)) == doc
    with pytest.raises(CorruptPayload):
        decompress(payload, {library.dict_id: library}, max_output=len(doc) - 1)
