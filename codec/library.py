"""Pattern libraries (trained zstd dictionaries) as zone data: packing into TXT records and back.

Records of a library for `<domain>` (format `semcodec1`):

* header, at ``_codec.<domain>.``::

      TXT "v=semcodec1" "id=<zstd dictionary id>" "size=<octets>" "sha256=<hex>" "chunks=<n>"

* data chunk ``i`` (0 <= i < n), at ``<i>._codec.<domain>.``, one TXT record::

      TXT "c=<i>" "<base64>" "<base64>" ...

  Chunk ``i`` is octets ``[i*8192, (i+1)*8192)`` of the dictionary, base64 (RFC 4648, padded),
  cut into character-strings of at most 255 octets. One RR per owner name: the strings of one RR
  are ordered, while an RRset is not, so order lives in the owner name and in ``c=<i>``.
  Chunks of 8 KiB keep each response near 11 KB (DNS over TCP); the whole 64 KiB library would
  not fit one DNS message.

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

import dns.name
import zstandard

from codec.errors import BadHeader, ChecksumMismatch, ChunkOrder, MissingChunk, UnknownVersion

FORMAT = "semcodec1"
VERSION = 1
CHUNK_OCTETS = 8192
STRING_OCTETS = 255
DEFAULT_TTL = 3600
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HEADER_KEYS = ("v", "id", "size", "sha256", "chunks")


@dataclass(frozen=True)
class LibraryHeader:
    """The `_codec.<domain>` header record, parsed."""

    version: int
    dict_id: int
    size: int
    sha256: str
    chunks: int

    def to_strings(self) -> list[str]:
        return [
            f"v=semcodec{self.version}",
            f"id={self.dict_id}",
            f"size={self.size}",
            f"sha256={self.sha256}",
            f"chunks={self.chunks}",
        ]


@dataclass(frozen=True)
class PatternLibrary:
    """A trained zstd dictionary with its identity: format version, zstd dict id, sha256."""

    data: bytes
    dict_id: int
    sha256: str
    version: int = VERSION

    @classmethod
    def from_dictionary(cls, data: bytes) -> PatternLibrary:
        """Wrap the bytes of a zstd dictionary (as written by `zstandard.train_dictionary`)."""
        dict_id = zstandard.ZstdCompressionDict(data).dict_id()
        if dict_id == 0:
            raise BadHeader("not a zstd dictionary: no dictionary id (raw content?)")
        return cls(data=data, dict_id=dict_id, sha256=hashlib.sha256(data).hexdigest())

    @property
    def name(self) -> str:
        """The library's name: format and sha256 (what caches and logs call it)."""
        return f"semcodec{self.version}-sha256-{self.sha256}"

    @property
    def header(self) -> LibraryHeader:
        chunks = max(1, -(-len(self.data) // CHUNK_OCTETS))
        return LibraryHeader(self.version, self.dict_id, len(self.data), self.sha256, chunks)

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
        lines.append(f"; library {self.name}: zstd dictionary id {self.dict_id}, {len(self.data)} octets")
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


def parse_header(strings: Sequence[str | bytes]) -> LibraryHeader:
    """Parse the header's character-strings. Raises UnknownVersion or BadHeader."""
    fields: dict[str, str] = {}
    for raw in strings:
        key, sep, value = _text(raw).partition("=")
        if not sep:
            raise BadHeader(f"_codec header: {_text(raw)!r} is not key=value")
        fields[key] = value
    if fields.get("v") != FORMAT:
        raise UnknownVersion(f"_codec header: format {fields.get('v')!r}, this reader knows {FORMAT!r}")
    missing = [key for key in _HEADER_KEYS if key not in fields]
    if missing:
        raise BadHeader(f"_codec header: missing {', '.join(missing)}")
    try:
        dict_id, size, chunks = (int(fields[key]) for key in ("id", "size", "chunks"))
    except ValueError:
        raise BadHeader(f"_codec header: id, size and chunks must be integers: {fields}") from None
    sha = fields["sha256"].lower()
    if not _SHA256_HEX.fullmatch(sha) or dict_id <= 0 or size <= 0 or chunks <= 0:
        raise BadHeader(f"_codec header: bad value in {fields}")
    return LibraryHeader(VERSION, dict_id, size, sha, chunks)


def _chunk_index(position: int, strings: Sequence[str | bytes]) -> int:
    first = _text(strings[0]) if strings else ""
    if not re.fullmatch(r"c=\d+", first):
        raise ChunkOrder(f"_codec chunk record #{position}: first string {first!r} is not c=<index>")
    return int(first[2:])


def from_txt_records(
    header_strings: Sequence[str | bytes], chunk_records: Sequence[Sequence[str | bytes]]
) -> PatternLibrary:
    """Reassemble and verify a library from its header strings and chunk records (in index order).

    Raises UnknownVersion, BadHeader, MissingChunk, ChunkOrder, ChecksumMismatch.
    """
    header = parse_header(header_strings)
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
    library = PatternLibrary.from_dictionary(data)
    if library.dict_id != header.dict_id:
        raise ChecksumMismatch(f"_codec: dictionary id {library.dict_id}, header says {header.dict_id}")
    return library
