"""The first stage of `semcodec2` libraries: a reversible word replacing transform (after WRT).

A library carries a table of its domain's frequent words, each a run of ASCII letters with or
without one leading space (" the", "contract", " Court"). `WordTable.encode` replaces every
whole word of the text that is in the table with a code of one or two octets that text does not
use, before zstd compresses the result with the library's dictionary; `decode` undoes it.
Short frequent words are what LZ77 matches cost the most to say (a match of 3-5 octets costs
about as much as its literals), and with the words shortened the 64 KiB dictionary holds more
text. Measured with `semdns bench codec` (see `codec.train`).

Code octets:

* single-octet codes (table entries 0-26): the C0 control octets 0x01-0x08, 0x0E-0x1A, 0x1C-0x1F
  (not NUL, TAB, LF, VT, FF, CR nor ESC, which real text and terminal output do use);
* two-octet codes (entries 27-3098): a lead octet 0xC0, 0xC1 or 0xF5-0xFE, which never occur in
  UTF-8, then any octet;
* 0xFF is the escape: 0xFF followed by a reserved octet (any of the above or 0xFF) is that octet
  itself.

So any byte string, UTF-8 or not, round-trips byte-exactly; UTF-8 text without those control
octets needs no escape at all. A word is replaced only as a whole token: the tokens of a text are
its maximal runs of ASCII letters, each with the space before it when there is one; a token
" word" that is not in the table but whose "word" is, becomes the space and the code of "word".

The table travels inside the library as one zstd frame (level 19) of its words joined by LF,
most valuable first (`to_bytes` / `from_bytes`).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import zstandard

from codec.errors import BadTable, CorruptPayload

SINGLES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
LEADS = bytes([0xC0, 0xC1, *range(0xF5, 0xFF)])
ESCAPE = 0xFF
RESERVED = frozenset(SINGLES + LEADS + bytes([ESCAPE]))
CAPACITY = len(SINGLES) + 256 * len(LEADS)  # 3099 codes
MAX_WORD = 64  # octets of a table word, leading space included
MIN_WORD = 3  # shorter words save too little to be worth a code
MIN_DOCUMENTS = 2  # a word must occur in this many training documents
TABLE_LEVEL = 19
MAX_TABLE_OCTETS = CAPACITY * (MAX_WORD + 1)

_WORD = re.compile(rb" ?[A-Za-z]{1,%d}(?![A-Za-z])" % (MAX_WORD - 1))
_TOKEN_TEXT = rb" ?[A-Za-z]+"
_WORDS = re.compile(_TOKEN_TEXT)
_RESERVED_CLASS = b"[" + b"".join(re.escape(bytes([octet])) for octet in sorted(RESERVED)) + b"]"
_TOKENS = re.compile(_TOKEN_TEXT + b"|" + _RESERVED_CLASS)
_CODES = re.compile(  # what decode replaces: an escape pair, a code, or a stray reserved octet (an error)
    b"\xff" + _RESERVED_CLASS + b"|[" + re.escape(SINGLES) + b"]|[" + re.escape(LEADS) + b"].|" + _RESERVED_CLASS,
    re.DOTALL,
)


def _code(index: int) -> bytes:
    if index < len(SINGLES):
        return SINGLES[index : index + 1]
    lead, low = divmod(index - len(SINGLES), 256)
    return bytes([LEADS[lead], low])


def _unassigned(code: bytes) -> bytes:
    what = "is not assigned" if code[0] in SINGLES or len(code) == 2 else "(escape or lead) is not followed by its octet"
    raise CorruptPayload(f"word table of the library: code {code.hex()} {what}")


@dataclass(frozen=True)
class WordTable:
    """The words of a domain, most valuable first; entry i has the i-th code (see module doc)."""

    words: tuple[bytes, ...]
    _encoding: dict[bytes, bytes] = field(init=False, repr=False, compare=False, hash=False)
    _decoding: dict[bytes, bytes] = field(init=False, repr=False, compare=False, hash=False)
    _longest: int = field(init=False, repr=False, compare=False, hash=False)

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

    def encode(self, data: bytes) -> bytes:
        """`data` with table words replaced by their codes and reserved octets escaped."""
        table = self._encoding

        def replace(match: re.Match[bytes]) -> bytes:
            token = match.group(0)
            code = table.get(token)
            if code is not None:
                return code
            if token[0] == 0x20:
                code = table.get(token[1:])
                return token if code is None else b" " + code
            if token[0] in RESERVED and len(token) == 1:
                return bytes([ESCAPE]) + token
            return token

        return _TOKENS.sub(replace, data)

    def decode(self, data: bytes, limit: int | None = None) -> bytes:
        """The original of an `encode` output.

        Raises CorruptPayload on an unknown or cut code, or when the original would exceed
        `limit` octets (checked as it grows when it could, so a hostile payload cannot blow up
        memory).
        """
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
                return word or _unassigned(code)

            return _CODES.sub(restore, data)
        return _CODES.sub(lambda match: table.get(match.group(0)) or _unassigned(match.group(0)), data)

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
    table fills the code space: ranks beyond the real savings are simply never used.
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
    chosen.sort(key=lambda word: (-counts[word] * len(word), word))  # the busiest get one octet
    return WordTable(tuple(chosen))
