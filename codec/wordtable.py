"""The first stage of `semcodec2` libraries: a reversible word replacing transform (after WRT).

A library carries a table of its domain's frequent words, each a run of ASCII letters with or
without one leading space (" the", "contract", " Court"). `WordTable.encode` replaces every
whole word of the text that is in the table with a code of one or two octets that text does not
use, before zstd compresses the result with the library's dictionary; `decode` undoes it.
Short frequent words are what LZ77 matches cost the most to say (a match of 3-5 octets costs
about as much as its literals), and with the words shortened the 64 KiB dictionary holds more
text. Measured with `semdns bench codec` (see `codec.train`).

The encoded text is read as a sequence of units, left to right, the first that fits:

1. a *UTF-8 sequence*: a lead octet 0xC2-0xDF, 0xE0-0xEF or 0xF0-0xF4 followed by exactly 1, 2
   or 3 continuation octets 0x80-0xBF (regex ``_SEQUENCE``; overlong forms and surrogates count
   too: encoder and decoder only have to agree), which stands for itself;
2. an escape: 0xFF followed by a reserved octet, which stands for that octet;
3. a one-octet code (table entries 0-88): the C0 control octets 0x01-0x08, 0x0E-0x1A, 0x1C-0x1F
   (not NUL, TAB, LF, VT, FF, CR nor ESC, which real text and terminal output do use), then the
   continuation octets 0x80-0xBF, which UTF-8 only uses inside a sequence;
4. a two-octet code (entries 89-3160): a lead octet 0xC0, 0xC1 or 0xF5-0xFE, which never occur in
   UTF-8, then any octet;
5. any other octet stands for itself; the reserved octets (the code octets, 0xC2-0xF4 and 0xFF)
   never do, so a stray one is a corrupt payload.

The encoder keeps the UTF-8 sequences of the input (found by the same regex, left to right) and
its letters and other ASCII, replaces table words and escapes every other reserved octet: a lead
octet that does not start a sequence, a continuation octet outside one, 0xC0/0xC1/0xF5-0xFF and the
code controls. So a code is never read as the continuation of a literal lead octet (those are
escaped), any byte string, UTF-8 or not, round-trips byte-exactly, and UTF-8 text without those
control octets needs no escape at all. A word is replaced only as a whole token: the tokens of a
text are its maximal runs of ASCII letters, each with the space before it when there is one; a
token " word" that is not in the table but whose "word" is, becomes the space and the code of "word".

Both loops run in C (`codec/_wordtable.c`, built on install: one pass over the octets, no
Python per word, the table packed in one block of memory) when that module is there, else in
Python regexes; `native` says which. The Python loops are the reference: the tests compare the
two on arbitrary bytes.

The table travels inside the library as one zstd frame (level 19) of its words, most valuable
first, joined by LF (`to_bytes` / `from_bytes`).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import zstandard

from codec.errors import BadTable, CorruptPayload

try:
    from codec import _wordtable as _native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a source tree without the built module
    _native = None

CONTROLS = bytes([*range(0x01, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
CONTINUATIONS = bytes(range(0x80, 0xC0))
SINGLES = CONTROLS + CONTINUATIONS
LEADS = bytes([0xC0, 0xC1, *range(0xF5, 0xFF)])
ESCAPE = 0xFF
RESERVED = frozenset(CONTROLS + bytes(range(0x80, 0x100)))
CAPACITY = len(SINGLES) + 256 * len(LEADS)  # 3161 codes
MAX_WORD = 64  # octets of a table word, leading space included
MIN_WORD = 3  # shorter words save too little to be worth a code
MIN_DOCUMENTS = 2  # a word must occur in this many training documents
TABLE_LEVEL = 19
MAX_TABLE_OCTETS = CAPACITY * (MAX_WORD + 1)  # words and LFs

_WORD = re.compile(rb" ?[A-Za-z]{1,%d}(?![A-Za-z])" % (MAX_WORD - 1))
_TOKEN_TEXT = rb" ?[A-Za-z]+"
_WORDS = re.compile(_TOKEN_TEXT)
_SEQUENCE = rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"


def _class(octets: bytes | frozenset[int]) -> bytes:
    return b"[" + b"".join(re.escape(bytes([octet])) for octet in sorted(octets)) + b"]"


_TOKENS = re.compile(_TOKEN_TEXT + b"|" + _SEQUENCE + b"|" + _class(RESERVED))  # encode: word | sequence | reserved
_CODES = re.compile(  # decode: escape | one-octet code | two-octet code | sequence | stray reserved octet
    b"\xff" + _class(RESERVED) + b"|" + _class(SINGLES) + b"|" + _class(LEADS) + b".|" + _SEQUENCE + b"|"
    + _class(RESERVED),
    re.DOTALL,
)  # every branch starts with a class of octets, so the scan skips plain text quickly


def _code(index: int) -> bytes:
    if index < len(SINGLES):
        return SINGLES[index : index + 1]
    lead, low = divmod(index - len(SINGLES), 256)
    return bytes([LEADS[lead], low])


def _sequence(code: bytes) -> bytes:
    """A UTF-8 sequence the decoder met: itself (no code starts with a lead 0xC2-0xF4); else CorruptPayload."""
    return code if len(code) > 1 and 0xC2 <= code[0] <= 0xF4 else _unassigned(code)


def _unassigned(code: bytes) -> bytes:
    what = "is not assigned" if len(code) == 2 or code[0] in SINGLES else "is reserved (a stray escape, lead or octet)"
    raise CorruptPayload(f"word table of the library: code {code.hex()} {what}")


@dataclass(frozen=True)
class WordTable:
    """The words of a domain, most valuable first; entry i has the i-th code (see module doc)."""

    words: tuple[bytes, ...]
    _encoding: dict[bytes, bytes] = field(init=False, repr=False, compare=False, hash=False)
    _decoding: dict[bytes, bytes] = field(init=False, repr=False, compare=False, hash=False)
    _longest: int = field(init=False, repr=False, compare=False, hash=False)
    _packed: object = field(init=False, repr=False, compare=False, hash=False)  # the C loops' table (`_native.pack`)
    native: bool = field(default=_native is not None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.words) > CAPACITY:
            raise BadTable(f"word table: {len(self.words)} words, the codes hold {CAPACITY}")
        for word in self.words:
            if not _WORD.fullmatch(word):
                raise BadTable(f"word table: {word[:80]!r} is not a word (letters, optional leading space)")
        if len(set(self.words)) != len(self.words):
            raise BadTable("word table: a word appears twice")
        codes = [_code(index) for index in range(len(self.words))]
        escapes = {bytes([ESCAPE, octet]): bytes([octet]) for octet in RESERVED}
        object.__setattr__(self, "_encoding", dict(zip(self.words, codes)))
        object.__setattr__(self, "_decoding", {**dict(zip(codes, self.words)), **escapes})
        object.__setattr__(self, "_longest", max(map(len, self.words), default=1))
        object.__setattr__(self, "_packed", _native.pack(self.words) if self.native else None)

    def encode(self, data: bytes) -> bytes:
        """`data` with table words replaced by their codes and reserved octets escaped."""
        if self.native:
            return _native.encode(data, self._packed)
        return self._encode_python(data)

    def decode(self, data: bytes, limit: int | None = None) -> bytes:
        """The original of an `encode` output.

        Raises CorruptPayload on an unknown, cut or stray code, or when the original would
        exceed `limit` octets (checked as it grows, so a hostile payload cannot blow up memory).
        """
        if self.native:
            try:
                return _native.decode(data, self._packed, -1 if limit is None else limit)
            except ValueError as exc:
                raise CorruptPayload(str(exc)) from None
        return self._decode_python(data, limit)

    def _encode_python(self, data: bytes) -> bytes:
        table = self._encoding

        def replace(match: re.Match[bytes]) -> bytes:
            token = match.group(0)  # a UTF-8 sequence falls through: it stands for itself
            code = table.get(token)
            if code is not None:
                return code
            if token[0] == 0x20:
                code = table.get(token[1:])
                return token if code is None else b" " + code
            if len(token) == 1 and token[0] in RESERVED:
                return bytes([ESCAPE]) + token
            return token

        return _TOKENS.sub(replace, data)

    def _decode_python(self, data: bytes, limit: int | None = None) -> bytes:
        table = self._decoding
        if limit is not None and len(data) * self._longest > limit:
            room = [limit - len(data)]  # octets the output may still grow

            def restore(match: re.Match[bytes]) -> bytes:
                code = match.group(0)
                word = table.get(code)
                if word is not None:
                    room[0] -= len(word) - len(code)
                    if room[0] < 0:
                        raise CorruptPayload(f"the word table expands the payload beyond {limit} octets")
                return word or _sequence(code)

            return _CODES.sub(restore, data)
        return _CODES.sub(lambda match: table.get(match.group(0)) or _sequence(match.group(0)), data)

    def to_bytes(self) -> bytes:
        """The table as stored in a library: one zstd frame of the words joined by LF."""
        return zstandard.ZstdCompressor(level=TABLE_LEVEL, write_checksum=True).compress(b"\n".join(self.words))

    @classmethod
    def from_bytes(cls, blob: bytes) -> WordTable:
        """Parse `to_bytes` output. Raises BadTable."""
        try:
            text = zstandard.ZstdDecompressor().decompress(blob, max_output_size=MAX_TABLE_OCTETS)
        except zstandard.ZstdError as exc:
            raise BadTable(f"word table: not a zstd frame of words ({exc})") from None
        return cls(tuple(text.split(b"\n")) if text else ())


def learn_table(documents: Sequence[bytes], capacity: int = CAPACITY) -> WordTable:
    """The words worth a code in `documents`, by expected saving, most valuable first.

    Candidates are tokens of at least MIN_WORD octets found in at least MIN_DOCUMENTS documents
    (what one document repeats, others need not); a word's value is its number of occurrences
    times the octets its code saves (the length less 1.5, the mean code length). The
    table fills the code space: ranks beyond the real savings are simply never used. The
    one-octet codes go to the most frequent words: over a two-octet code they save one octet
    an occurrence, whatever the word's length.
    """
    counts: Counter[bytes] = Counter()
    spread: Counter[bytes] = Counter()
    for doc in documents:
        tokens = [token for token in _WORDS.findall(doc) if MIN_WORD <= len(token) <= MAX_WORD]
        counts.update(tokens)
        spread.update(set(tokens))
    candidates = [word for word, seen in spread.items() if seen >= MIN_DOCUMENTS]
    candidates.sort(key=lambda word: (-counts[word] * (len(word) - 1.5), word))
    chosen = candidates[:capacity]
    chosen.sort(key=lambda word: (-counts[word], word))  # the most frequent get one octet
    return WordTable(tuple(chosen))
