"""Context compression with a domain's pattern library.

The payload is one zstd frame (RFC 8878) that describes itself: the frame header names the
dictionary id (0 = none) and the content size, and an XXH64 checksum ends the frame, so a
receiver knows which library it needs and detects a damaged body.

With a `semcodec2` library the frame's content is the text after the library's word table
(`codec.wordtable`): `compress` encodes before zstd, `decompress` decodes after, so the frame
(and its content size and checksum) covers the encoded text, and the payload still names its
library by the dictionary id alone.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import zstandard

from codec.errors import CorruptPayload, UnknownDictionary
from codec.library import PatternLibrary

DEFAULT_LEVEL = 19
MAX_OUTPUT = 16 * 1024 * 1024


@lru_cache(maxsize=32)
def _compression_dict(library: PatternLibrary, level: int) -> zstandard.ZstdCompressionDict:
    cdict = zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)
    cdict.precompute_compress(level=level)
    return cdict


@lru_cache(maxsize=32)
def _decompression_dict(library: PatternLibrary) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)


def compress(data: bytes, library: PatternLibrary | None, level: int = DEFAULT_LEVEL) -> bytes:
    """One zstd frame of `data`, with the library's dictionary (and word table) when given."""
    cdict = None
    if library is not None:
        if library.word_table is not None:
            data = library.word_table.encode(data)
        cdict = _compression_dict(library, level)
    compressor = zstandard.ZstdCompressor(level=level, dict_data=cdict, write_checksum=True, write_content_size=True)
    return compressor.compress(data)


def payload_dict_id(payload: bytes) -> int:
    """The dictionary id a payload needs (0: none). Raises CorruptPayload."""
    try:
        return zstandard.get_frame_parameters(payload).dict_id
    except zstandard.ZstdError as exc:
        raise CorruptPayload(f"not a zstd frame: {exc}") from None


def decompress(
    payload: bytes, libraries_by_id: Mapping[int, PatternLibrary], max_output: int = MAX_OUTPUT
) -> bytes:
    """The original bytes of `payload` (at most `max_output` octets).

    Raises UnknownDictionary(id) or CorruptPayload.
    """
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise CorruptPayload(f"not a zstd frame: {exc}") from None
    if params.content_size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise CorruptPayload("the zstd frame does not declare its content size")
    if params.content_size > max_output:
        raise CorruptPayload(f"the frame declares {params.content_size} octets, more than {max_output}")
    ddict = None
    library = None
    if params.dict_id:
        library = libraries_by_id.get(params.dict_id)
        if library is None:
            raise UnknownDictionary(params.dict_id)
        ddict = _decompression_dict(library)
    stream = zstandard.ZstdDecompressor(dict_data=ddict).decompressobj()
    try:
        out = stream.decompress(payload)
    except zstandard.ZstdError as exc:
        raise CorruptPayload(f"damaged zstd frame: {exc}") from None
    if not stream.eof:
        raise CorruptPayload("the zstd frame is cut short")
    if stream.unused_data:
        raise CorruptPayload(f"{len(stream.unused_data)} octets of garbage after the zstd frame")
    if len(out) != params.content_size:
        raise CorruptPayload(f"decoded {len(out)} octets, the frame declares {params.content_size}")
    if library is not None and library.word_table is not None:
        out = library.word_table.decode(out, max_output)
    return out
