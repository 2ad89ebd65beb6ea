"""The codec's exception hierarchy: one root, `CodecError`; every message says what and where."""
from __future__ import annotations

from common.errors import SemanticDnsError


class CodecError(SemanticDnsError):
    """Root of every error raised by the `codec` package."""


# --- query text <-> names and EDNS options -------------------------------------------------------
class EmptyText(CodecError):
    """The question is empty once normalised (or the name carries no text labels)."""


class TextTooLong(CodecError):
    """The text does not fit a DNS name: send it in the EDNS text option instead."""


class BadEncoding(CodecError):
    """An invalid escape, label, UTF-8 sequence or value in an encoded question."""


class TextTooLarge(BadEncoding):
    """The question is larger than any form carries (`codec.text`: 65,000 octets of UTF-8, or
    65,000 code points once decomposed)."""


class NotSemantic(CodecError):
    """A name without a `q` or `explain` label: not a semantic query."""


class HashedName(CodecError):
    """The name carries only a hash of the text (`h-...`): the text travels in the EDNS option."""


class UnknownFlag(CodecError):
    """An EDNS option sets a flag bit this implementation does not know."""


class Truncated(CodecError):
    """An EDNS option is shorter than its fixed fields or declared length."""


# --- pattern libraries -----------------------------------------------------------------------
class LibraryError(CodecError):
    """A pattern library's records are inconsistent."""


class UnknownVersion(LibraryError):
    """The header's `v=` is not a format version this implementation reads."""


class BadHeader(LibraryError):
    """The header record lacks a field or has an unreadable value."""


class HeaderOutOfBounds(BadHeader):
    """The header announces more chunks or octets than the reader's limits (`codec.library.LibraryLimits`),
    or a chunk count that does not match its size: refused before any chunk is fetched."""


class MissingChunk(LibraryError):
    """A data chunk announced by the header is absent."""


class ChunkOrder(LibraryError):
    """Data chunks arrived out of order, duplicated, or beyond the announced count."""


class ChecksumMismatch(LibraryError):
    """The reassembled library's size or sha256 differs from the header."""


class BadTable(LibraryError):
    """A library's word table (the `semcodec2` first stage) is unreadable or invalid."""


class TrainingError(CodecError):
    """A dictionary could not be trained from the given corpus."""


# --- compression -----------------------------------------------------------------------------
class UnknownDictionary(CodecError):
    """A payload was compressed with a dictionary id nobody here has."""

    def __init__(self, dict_id: int) -> None:
        super().__init__(f"payload needs zstd dictionary id {dict_id}, which is not loaded")
        self.dict_id = dict_id


class CorruptPayload(CodecError):
    """A compressed payload is not a valid frame, fails its checksum, or is too large."""
