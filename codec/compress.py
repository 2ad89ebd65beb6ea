"""Context compression with a domain's pattern library.

The payload is one zstd frame (RFC 8878) that describes itself: the frame header names the
dictionary id (0 = none) and the content size, and an XXH64 checksum ends the frame, so a
receiver knows which library it needs and detects a damaged body.

With a `semcodec2` library the frame's content is the text after the library's word table
(`codec.wordtable`): `compress` encodes before zstd, `decompress` decodes after, so the frame
(and its content size and checksum) covers the encoded text, and the payload still names its
library by the dictionary id alone.

Speed: the (de)compression contexts are made once per library, level and thread (a
`zstandard` context must not be used by two threads at once) and reused; a payload is
decompressed in one call that also refuses a cut frame or octets after it.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache

import zstandard

from codec.errors import CorruptPayload, UnknownDictionary
from codec.library import PatternLibrary

# zstd level of contexts, and the level the libraries' entropy tables are measured at (codec.train).
# Level 9 (lazy2), not 19 (btultra2): on 1-4 KB held-out documents with the domain library its
# payloads are 1-4% larger than level 19's, but it compresses 5-10x faster (19 runs at 2-8 MB/s
# here, below the 20 MB/s a client should spend on a context). `semdns bench codec --level N`.
DEFAULT_LEVEL = 9
MAX_OUTPUT = 16 * 1024 * 1024


@lru_cache(maxsize=32)
def _compression_dict(library: PatternLibrary, level: int) -> zstandard.ZstdCompressionDict:
    cdict = zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)
    cdict.precompute_compress(level=level)
    return cdict


@lru_cache(maxsize=32)
def _decompression_dict(library: PatternLibrary) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)


class _Contexts(threading.local):
    """This thread's compressors by (library, level) and decompressors by library (None: no dictionary)."""

    def __init__(self) -> None:
        self.compressors: dict[tuple[PatternLibrary | None, int], zstandard.ZstdCompressor] = {}
        self.decompressors: dict[PatternLibrary | None, zstandard.ZstdDecompressor] = {}


_CONTEXTS = _Contexts()
_CACHED = 16  # libraries a thread keeps contexts for; the oldest goes first


def _compressor(library: PatternLibrary | None, level: int) -> zstandard.ZstdCompressor:
    cache = _CONTEXTS.compressors
    compressor = cache.get((library, level))
    if compressor is None:
        cdict = None if library is None else _compression_dict(library, level)
        compressor = zstandard.ZstdCompressor(level=level, dict_data=cdict, write_checksum=True,
                                              write_content_size=True)
        if len(cache) >= _CACHED:
            del cache[next(iter(cache))]
        cache[library, level] = compressor
    return compressor


def _decompressor(library: PatternLibrary | None) -> zstandard.ZstdDecompressor:
    cache = _CONTEXTS.decompressors
    decompressor = cache.get(library)
    if decompressor is None:
        ddict = None if library is None else _decompression_dict(library)
        decompressor = zstandard.ZstdDecompressor(dict_data=ddict)
        if len(cache) >= _CACHED:
            del cache[next(iter(cache))]
        cache[library] = decompressor
    return decompressor


def compress(data: bytes, library: PatternLibrary | None, level: int = DEFAULT_LEVEL) -> bytes:
    """One zstd frame of `data`, with the library's dictionary (and word table) when given."""
    if library is not None and library.word_table is not None:
        data = library.word_table.encode(data)
    return _compressor(library, level).compress(data)


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
    library = None
    if params.dict_id:
        library = libraries_by_id.get(params.dict_id)
        if library is None:
            raise UnknownDictionary(params.dict_id)
    try:  # one frame, whole, nothing after it: a cut frame or trailing octets are errors here
        out = _decompressor(library).decompress(payload, max_output_size=max_output, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise CorruptPayload(f"damaged zstd frame: {exc}") from None
    if len(out) != params.content_size:
        raise CorruptPayload(f"decoded {len(out)} octets, the frame declares {params.content_size}")
    if library is not None and library.word_table is not None:
        out = library.word_table.decode(out, max_output)
    return out
