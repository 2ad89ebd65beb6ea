"""Pattern libraries (trained zstd dictionaries, with a word table) as zone data: TXT records and back.

Records of a library for `<domain>` (format `semcodec3`; `semcodec1` and `semcodec2` are still read
and written):

* header, at ``_codec.<domain>.``::

      TXT "v=semcodec3" "id=<zstd dictionary id>" "size=<octets>" "sha256=<hex>" "chunks=<n>" "table=<octets>"

  (`semcodec2`: the same with ``v=semcodec2``; `semcodec1`: without ``table=``.)

* data chunk ``i`` (0 <= i < n), at ``<i>._codec.<domain>.``, one TXT record::

      TXT "c=<i>" "<base64>" "<base64>" ...

  Chunk ``i`` is octets ``[i*8192, (i+1)*8192)`` of the library's data, base64 (RFC 4648, padded),
  cut into character-strings of at most 255 octets. One RR per owner name: the strings of one RR
  are ordered, while an RRset is not, so order lives in the owner name and in ``c=<i>``.
  Chunks of 8 KiB keep each response near 11 KB (DNS over TCP); a whole library (up to 128 KiB)
  would not fit one DNS message.

The data of a `semcodec1` library is a zstd dictionary. The data of a `semcodec2` or `semcodec3`
library is its word table (the first ``table=`` octets: one zstd frame of words, `codec.wordtable`)
followed by the zstd dictionary; ``size`` and ``sha256`` cover both, ``id`` is the dictionary's.
A payload stays one zstd frame whose dictionary id names the library; the library's version says
whether the text went through the word table before zstd, and how the frame is laid out: a
`semcodec3` payload is the trimmed frame of `codec.compress` (no magic number, content size nor
checksum), the others a standard zstd frame.

Bounds (`LibraryLimits`): a reader refuses a header announcing more than 16 chunks or 128 KiB
(`DEFAULT_LIMITS`: what the trainer writes at most), or a chunk count other than
``ceil(size / 8192)``, in `parse_header`, before fetching any chunk (`HeaderOutOfBounds`). A reader
may raise its limits up to `HARD_LIMITS` (64 chunks, 512 KiB), never beyond (`LibraryLimits.capped`).
`check_header` says the same of a header text, for zone checks.

A library is named by its sha256 (`PatternLibrary.name`) and versioned by the format tag. A
domain without a library uses its nearest ancestor's: `library_owner_chain` lists the header
owners to try, nearest first.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import dns.name
import zstandard

from codec.errors import (
    BadHeader,
    BadTable,
    ChecksumMismatch,
    ChunkOrder,
    CodecError,
    HeaderOutOfBounds,
    MissingChunk,
    UnknownVersion,
)
from codec.wordtable import WordTable

PLAIN = 1  # semcodec1: a zstd dictionary
WORDS = 2  # semcodec2: a word table, then a zstd dictionary
TRIMMED = 3  # semcodec3: as semcodec2, its payloads are trimmed zstd frames (codec.compress)
FORMATS = {PLAIN: "semcodec1", WORDS: "semcodec2", TRIMMED: "semcodec3"}
CHUNK_OCTETS = 8192
STRING_OCTETS = 255
DEFAULT_TTL = 3600
KIB = 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HEADER_KEYS = {
    PLAIN: ("v", "id", "size", "sha256", "chunks"),
    WORDS: ("v", "id", "size", "sha256", "chunks", "table"),
    TRIMMED: ("v", "id", "size", "sha256", "chunks", "table"),
}


@dataclass(frozen=True)
class LibraryLimits:
    """The most a reader fetches for one library: `chunks` data chunks, `size` octets in all."""

    chunks: int = 16
    size: int = 128 * KIB

    def capped(self, hard: LibraryLimits | None = None) -> LibraryLimits:
        """These limits, none above `hard` (default `HARD_LIMITS`) nor below one chunk."""
        hard = hard or HARD_LIMITS
        return LibraryLimits(max(1, min(self.chunks, hard.chunks)), max(1, min(self.size, hard.size)))


DEFAULT_LIMITS = LibraryLimits()
HARD_LIMITS = LibraryLimits(chunks=64, size=512 * KIB)


@dataclass(frozen=True)
class LibraryHeader:
    """The `_codec.<domain>` header record, parsed."""

    version: int
    dict_id: int
    size: int
    sha256: str
    chunks: int
    table: int = 0  # octets of word table at the start of the data (semcodec2 and 3)

    def to_strings(self) -> list[str]:
        strings = [
            f"v={FORMATS[self.version]}",
            f"id={self.dict_id}",
            f"size={self.size}",
            f"sha256={self.sha256}",
            f"chunks={self.chunks}",
        ]
        return strings if self.version == PLAIN else strings + [f"table={self.table}"]


@dataclass(frozen=True)
class PatternLibrary:
    """A trained library and its identity: format version, zstd dict id, sha256 of `data`.

    `data` is what travels: the zstd dictionary (semcodec1), or the word table's `table_octets`
    followed by the dictionary (semcodec2, semcodec3).
    """

    data: bytes
    dict_id: int
    sha256: str
    version: int = PLAIN
    table_octets: int = 0

    def __hash__(self) -> int:
        """The sha256's hash (equal libraries have equal data): the codec's per-thread contexts look a
        library up on every payload, and hashing all five fields cost 0.3 us of a 7 us decompression."""
        return hash(self.sha256)

    @classmethod
    def from_dictionary(cls, data: bytes) -> PatternLibrary:
        """A `semcodec1` library: the bytes of a zstd dictionary (e.g. `zstandard.train_dictionary`)."""
        return cls.from_data(data, PLAIN, 0)

    @classmethod
    def with_table(cls, table: WordTable, dictionary: bytes, version: int = TRIMMED) -> PatternLibrary:
        """A `semcodec3` (or `version`) library: `table` as the first stage in front of a zstd dictionary."""
        if version == PLAIN:
            raise BadHeader(f"{FORMATS[PLAIN]} has no word table")
        stored = table.to_bytes()
        return cls.from_data(stored + dictionary, version, len(stored))

    @classmethod
    def from_data(cls, data: bytes, version: int, table_octets: int) -> PatternLibrary:
        """A library from its transported data. Raises BadHeader or BadTable."""
        if version not in FORMATS or (version == PLAIN) != (table_octets == 0) or table_octets >= len(data):
            raise BadHeader(f"library data: version {version} with a {table_octets}-octet table of {len(data)}")
        dict_id = zstandard.ZstdCompressionDict(data[table_octets:]).dict_id()
        if dict_id == 0:
            raise BadHeader(f"{FORMATS[version]} library: not a zstd dictionary after the table (raw content?)")
        library = cls(data, dict_id, hashlib.sha256(data).hexdigest(), version, table_octets)
        _ = library.word_table  # parse now: a bad table is the library's fault, not a payload's
        return library

    @property
    def dictionary(self) -> bytes:
        """The zstd dictionary."""
        return self.data[self.table_octets :]

    @cached_property
    def word_table(self) -> WordTable | None:
        """The first stage (semcodec2 and 3), None for semcodec1. Raises BadTable."""
        if self.version == PLAIN:
            return None
        try:
            return WordTable.from_bytes(self.data[: self.table_octets])
        except BadTable as exc:
            raise BadTable(f"{FORMATS[self.version]} library: {exc}") from None

    @property
    def name(self) -> str:
        """The library's name: format and sha256 (what caches and logs call it)."""
        return f"{FORMATS[self.version]}-sha256-{self.sha256}"

    @property
    def header(self) -> LibraryHeader:
        chunks = chunks_for(len(self.data))
        return LibraryHeader(self.version, self.dict_id, len(self.data), self.sha256, chunks, self.table_octets)

    def chunk_strings(self) -> list[list[str]]:
        """The TXT character-strings of every data chunk, in index order."""
        records = []
        for index in range(self.header.chunks):
            piece = base64.b64encode(self.data[index * CHUNK_OCTETS : (index + 1) * CHUNK_OCTETS]).decode()
            strings = [piece[i : i + STRING_OCTETS] for i in range(0, len(piece), STRING_OCTETS)]
            records.append([f"c={index}", *strings])
        return records

    def to_zone_fragment(self, domain: str, comment: Iterable[str] = (), ttl: int = DEFAULT_TTL) -> str:
        """The master-file text of the `_codec.<domain>` records (absolute owner names)."""
        lines = [f"; {line}" if line else ";" for line in comment]
        table = "" if self.version == PLAIN else f" (word table {self.table_octets} octets)"
        lines.append(f"; library {self.name}: zstd dictionary id {self.dict_id}, {len(self.data)} octets{table}")
        header = " ".join(f'"{s}"' for s in self.header.to_strings())
        lines.append(f"{header_owner(domain)} {ttl} IN TXT {header}")
        for index, strings in enumerate(self.chunk_strings()):
            body = "\n    ".join(f'"{s}"' for s in strings)
            lines.append(f"{chunk_owner(domain, index)} {ttl} IN TXT (\n    {body} )")
        return "\n".join(lines) + "\n"


def header_owner(domain: str) -> str:
    """`_codec.<domain>.`: where the header record lives."""
    return dns.name.from_text("_codec", dns.name.from_text(domain)).to_text()


def chunk_owner(domain: str, index: int) -> str:
    """`<index>._codec.<domain>.`: where data chunk `index` lives."""
    return dns.name.from_text(f"{index}._codec", dns.name.from_text(domain)).to_text()


def library_owner_chain(domain: str, apex: str | None = None) -> list[str]:
    """Header owners to try for `domain`, nearest first: the domain, then each ancestor.

    Stops at `apex` (inclusive) when given, else before the root (TLD included).
    """
    name = dns.name.from_text(domain)
    stop = dns.name.from_text(apex) if apex is not None else None
    if stop is not None and not name.is_subdomain(stop):
        raise ValueError(f"{domain} is not at or below {apex}")
    chain = []
    while name != dns.name.root:
        chain.append(dns.name.from_text("_codec", name).to_text())
        if name == stop:
            break
        name = name.parent()
    return chain


def _text(value: str | bytes) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def chunks_for(size: int) -> int:
    """How many data chunks carry `size` octets (at least one)."""
    return max(1, -(-size // CHUNK_OCTETS))


def check_bounds(header: LibraryHeader, limits: LibraryLimits = DEFAULT_LIMITS) -> LibraryHeader:
    """`header` if it is within `limits` (capped by `HARD_LIMITS`); raises HeaderOutOfBounds."""
    limits = limits.capped()
    if header.size > limits.size:
        raise HeaderOutOfBounds(f"_codec header: size={header.size} is over this reader's limit of {limits.size}")
    if header.chunks > limits.chunks:
        raise HeaderOutOfBounds(f"_codec header: chunks={header.chunks} is over this reader's limit of {limits.chunks}")
    if header.chunks != chunks_for(header.size):
        raise HeaderOutOfBounds(
            f"_codec header: chunks={header.chunks} does not match size={header.size} "
            f"({chunks_for(header.size)} chunks of {CHUNK_OCTETS} octets)"
        )
    return header


def check_header(strings: Sequence[str | bytes], limits: LibraryLimits = DEFAULT_LIMITS) -> list[str]:
    """Problems of a header record (empty: readers will fetch it), for zone checks."""
    try:
        parse_header(strings, limits)
    except CodecError as exc:
        return [str(exc)]
    return []


def parse_header(strings: Sequence[str | bytes], limits: LibraryLimits = DEFAULT_LIMITS) -> LibraryHeader:
    """Parse the header's character-strings and check them against `limits` (capped by
    `HARD_LIMITS`). Raises UnknownVersion, BadHeader or HeaderOutOfBounds."""
    fields: dict[str, str] = {}
    for raw in strings:
        key, sep, value = _text(raw).partition("=")
        if not sep:
            raise BadHeader(f"_codec header: {_text(raw)!r} is not key=value")
        fields[key] = value
    version = next((number for number, tag in FORMATS.items() if tag == fields.get("v")), None)
    if version is None:
        known = " or ".join(repr(tag) for tag in FORMATS.values())
        raise UnknownVersion(f"_codec header: format {fields.get('v')!r}, this reader knows {known}")
    missing = [key for key in _HEADER_KEYS[version] if key not in fields]
    if missing:
        raise BadHeader(f"_codec header ({fields['v']}): missing {', '.join(missing)}")
    try:
        dict_id, size, chunks, table = (int(fields.get(key, "0")) for key in ("id", "size", "chunks", "table"))
    except ValueError:
        raise BadHeader(f"_codec header: id, size, chunks and table must be integers: {fields}") from None
    sha = fields["sha256"].lower()
    if not _SHA256_HEX.fullmatch(sha) or dict_id <= 0 or size <= 0 or chunks <= 0:
        raise BadHeader(f"_codec header: bad value in {fields}")
    if version != PLAIN and not 0 < table < size:
        raise BadHeader(f"_codec header ({fields['v']}): table={table} must lie inside size={size}")
    return check_bounds(LibraryHeader(version, dict_id, size, sha, chunks, 0 if version == PLAIN else table), limits)


def _chunk_index(position: int, strings: Sequence[str | bytes]) -> int:
    first = _text(strings[0]) if strings else ""
    if not re.fullmatch(r"c=\d+", first):
        raise ChunkOrder(f"_codec chunk record #{position}: first string {first!r} is not c=<index>")
    return int(first[2:])


def from_txt_records(
    header_strings: Sequence[str | bytes],
    chunk_records: Sequence[Sequence[str | bytes]],
    limits: LibraryLimits = DEFAULT_LIMITS,
) -> PatternLibrary:
    """Reassemble and verify a library from its header strings and chunk records (in index order).

    Raises UnknownVersion, BadHeader (HeaderOutOfBounds), MissingChunk, ChunkOrder, ChecksumMismatch, BadTable.
    """
    header = parse_header(header_strings, limits)
    indices = [_chunk_index(pos, strings) for pos, strings in enumerate(chunk_records)]
    missing = sorted(set(range(header.chunks)) - set(indices))
    if missing:
        raise MissingChunk(f"_codec: chunk(s) {missing} of {header.chunks} missing")
    if indices != list(range(header.chunks)):
        raise ChunkOrder(f"_codec: chunk indices {indices}, expected 0..{header.chunks - 1} in order")
    parts = []
    for index, strings in enumerate(chunk_records):
        try:
            parts.append(base64.b64decode("".join(_text(s) for s in strings[1:]), validate=True))
        except binascii.Error as exc:
            raise ChecksumMismatch(f"_codec chunk {index}: not base64 ({exc})") from None
    data = b"".join(parts)
    if len(data) != header.size:
        raise ChecksumMismatch(f"_codec: reassembled {len(data)} octets, header says {header.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != header.sha256:
        raise ChecksumMismatch(f"_codec: sha256 {digest}, header says {header.sha256}")
    library = PatternLibrary.from_data(data, header.version, header.table)
    if library.dict_id != header.dict_id:
        raise ChecksumMismatch(f"_codec: dictionary id {library.dict_id}, header says {header.dict_id}")
    return library
